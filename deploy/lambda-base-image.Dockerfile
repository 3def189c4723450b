# syntax=docker/dockerfile:1
#
# pyrie inside an AWS Lambda base image, in place of the Go emulator. The base images start with
# /lambda-entrypoint.sh, which runs `/usr/local/bin/aws-lambda-rie /var/runtime/bootstrap` with _HANDLER set from the
# image's CMD whenever AWS_LAMBDA_RUNTIME_API is unset (that is, outside Lambda). This image puts pyrie at that path,
# so the entrypoint, the runtime interface client and your CMD stay exactly as they are. Build from the checkout's
# root (BASE_IMAGE: any AWS Lambda base image, e.g. public.ecr.aws/lambda/nodejs:20):
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
# pyrie gets a virtual environment of its own (/usr/local/pyrie), so it never shadows the runtime's packages: the
# Python images' awslambdaric has a module called runtime_client, as pyrie does. The Python images bring a Python
# 3.12; images without a Python 3.11+ (nodejs, provided, java...) get python3.11 from Amazon Linux 2023's packages.

ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12
FROM ${BASE_IMAGE}

RUN if ! command -v python3.12 >/dev/null && ! command -v python3.11 >/dev/null; then \
        (command -v dnf >/dev/null && dnf install -y python3.11 && dnf clean all) \
        || (microdnf install -y python3.11 && microdnf clean all); \
    fi

COPY setup.cfg pyproject.toml README.md /usr/src/pyrie/
COPY pyrie_core /usr/src/pyrie/pyrie_core
COPY supervisor /usr/src/pyrie/supervisor
COPY runtime_api /usr/src/pyrie/runtime_api
COPY invoke_api /usr/src/pyrie/invoke_api
COPY pyrie_durable /usr/src/pyrie/pyrie_durable
COPY pyrie_runtime_client /usr/src/pyrie/pyrie_runtime_client
RUN PYTHON="$(command -v python3.12 || command -v python3.11)" \
    && "$PYTHON" -m venv /usr/local/pyrie \
    && /usr/local/pyrie/bin/pip install --no-cache-dir --disable-pip-version-check /usr/src/pyrie \
    && rm -rf /usr/src/pyrie \
    && ln -sf /usr/local/pyrie/bin/pyrie /usr/local/bin/aws-lambda-rie

HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/pyrie/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
