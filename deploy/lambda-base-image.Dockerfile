# syntax=docker/dockerfile:1
#
# pyrie inside an AWS Lambda base image, in place of the Go emulator, as one file. The base images start with
# /lambda-entrypoint.sh, which runs `/usr/local/bin/aws-lambda-rie /var/runtime/bootstrap` with _HANDLER set from the
# image's CMD whenever AWS_LAMBDA_RUNTIME_API is unset (that is, outside Lambda). The first stage builds pyrie's single
# executable file (`make dist`, see docs/distribution.md); the last copies it to that path, so the entrypoint, the
# runtime interface client and your CMD stay exactly as they are. The file needs no Python and nothing from the
# image's libraries, so any base image works (nodejs, java, dotnet, provided, python). Build from the checkout's root
# (BASE_IMAGE: any AWS Lambda base image, e.g. public.ecr.aws/lambda/nodejs:20):
#
#   docker build -f deploy/lambda-base-image.Dockerfile -t pyrie-lambda-python .
#   docker build -f deploy/lambda-base-image.Dockerfile --build-arg BASE_IMAGE=public.ecr.aws/lambda/nodejs:20 \
#       -t pyrie-lambda-nodejs .
#
# Then use it as the base image it replaces: FROM pyrie-lambda-python, COPY app.py ${LAMBDA_TASK_ROOT},
# CMD ["app.handler"]; or run it with your code mounted:
#
#   docker run --rm -p 127.0.0.1:9000:8080 -v "$PWD/examples/node-sse:/var/task:ro" pyrie-lambda-nodejs index.plain
#
# The file alone (dist/pyrie-<version>-linux-<arch>), for this machine's architecture or, with buildx and QEMU,
# another one:
#
#   docker buildx build -f deploy/lambda-base-image.Dockerfile --target file --output type=local,dest=dist .
#   docker buildx build --platform linux/arm64 -f deploy/lambda-base-image.Dockerfile --target file \
#       --output type=local,dest=dist .

ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12

# Debian's python3.11 (with its shared libpython) freezes pyrie; gcc and libzstd-dev build the static launcher.
FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv libpython3.11 gcc libc6-dev \
        libzstd-dev binutils make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /usr/src/pyrie
COPY Makefile setup.py setup.cfg pyproject.toml README.md ./
COPY packaging ./packaging
COPY pyrie_core ./pyrie_core
COPY supervisor ./supervisor
COPY runtime_api ./runtime_api
COPY invoke_api ./invoke_api
COPY pyrie_durable ./pyrie_durable
COPY pyrie_runtime_client ./pyrie_runtime_client
RUN make dist \
    && mkdir /out \
    && cp dist/pyrie-*-linux-* /out/ \
    && cp dist/pyrie-*-linux-* /aws-lambda-rie

# The file alone: --target file --output type=local,dest=dist
FROM scratch AS file
COPY --from=build /out/ /

# The default target: the base image with pyrie where the entrypoint runs the emulator.
FROM ${BASE_IMAGE}
COPY --from=build /aws-lambda-rie /usr/local/bin/aws-lambda-rie
