/*
 * The single file's launcher: a static program (no dynamic loader, no library from the host) with pyrie's bundle
 * appended to it (see docs/distribution.md and packaging/build_dist.py for the format).
 *
 * On start it looks for the bundle unpacked in "$TMPDIR/<name>.<uid>" (TMPDIR defaults to /tmp; <name> is
 * pyrie.<version>-<hash>, the bundle's hash). When it is missing, the bundle is unpacked into a fresh directory beside
 * it, the main program's ELF interpreter is pointed at the bundled dynamic loader, and the directory is renamed into
 * place (two starts racing keep one). Then the launcher execs the main program with its own argv and environment:
 * no process stays between the caller and pyrie, and every later start in the same machine or container reuses the
 * directory.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zstd.h>

#define MAGIC "PYRIE-BUNDLE-V1"
#define NAME_MAX_LEN 64
#define MAIN_PROGRAM "pyrie"
#define LOADER "_internal/ld-linux.so"

struct trailer {
    char magic[16];
    uint64_t payload_offset;
    uint64_t payload_size;
    uint64_t unpacked_size;
    char name[NAME_MAX_LEN];
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pyrie: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(127);
}

static void read_exact(int fd, void *buf, size_t len, off_t offset)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot read this program's bundle: %s", n < 0 ? strerror(errno) : "truncated");
        p += n;
        len -= (size_t)n;
        offset += n;
    }
}

static void write_all(int fd, const unsigned char *p, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("cannot write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* The bundle as records: a type byte ('d' directory, 'f' file, 'l' symlink, 'e' end), a 16-bit path length and the
 * path, a 32-bit mode, a 64-bit length and that many bytes (the file's content or the link's target); little-endian. */
struct reader {
    const unsigned char *p, *end;
};

static const unsigned char *take(struct reader *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        die("the bundle is damaged (truncated record)");
    const unsigned char *at = r->p;
    r->p += n;
    return at;
}

static uint64_t take_uint(struct reader *r, size_t bytes)
{
    const unsigned char *p = take(r, bytes);
    uint64_t value = 0;
    for (size_t i = bytes; i-- > 0;)
        value = (value << 8) | p[i];
    return value;
}

static void unpack(const unsigned char *data, size_t size, const char *root)
{
    struct reader r = {data, data + size};
    char path[4096];
    for (;;) {
        unsigned char type = *take(&r, 1);
        if (type == 'e')
            return;
        size_t path_len = (size_t)take_uint(&r, 2);
        const unsigned char *name = take(&r, path_len);
        mode_t mode = (mode_t)take_uint(&r, 4) & 07777;
        uint64_t len = take_uint(&r, 8);
        const unsigned char *content = take(&r, (size_t)len);
        if (path_len == 0 || name[0] == '/' || memmem(name, path_len, "..", 2) != NULL)
            die("the bundle is damaged (bad path)");
        if ((size_t)snprintf(path, sizeof path, "%s/%.*s", root, (int)path_len, name) >= sizeof path)
            die("the bundle is damaged (path too long)");
        if (type == 'd') {
            if (mkdir(path, mode | S_IRWXU) < 0)
                die("cannot create %s: %s", path, strerror(errno));
        } else if (type == 'f') {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode | S_IRUSR | S_IWUSR);
            if (fd < 0)
                die("cannot create %s: %s", path, strerror(errno));
            write_all(fd, content, (size_t)len, path);
            if (close(fd) < 0)
                die("cannot write %s: %s", path, strerror(errno));
        } else if (type == 'l') {
            char target[4096];
            if (len >= sizeof target)
                die("the bundle is damaged (link too long)");
            memcpy(target, content, (size_t)len);
            target[len] = '\0';
            if (symlink(target, path) < 0)
                die("cannot create %s: %s", path, strerror(errno));
        } else {
            die("the bundle is damaged (record type %d)", type);
        }
    }
}

/* Point the main program's PT_INTERP (a placeholder the build reserved) at the bundled loader. */
static void set_interpreter(const char *program, const char *interpreter)
{
    int fd = open(program, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s: %s", program, strerror(errno));
    Elf64_Ehdr ehdr;
    read_exact(fd, &ehdr, sizeof ehdr, 0);
    if (memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_ident[EI_CLASS] != ELFCLASS64)
        die("%s is not a 64-bit ELF program", program);
    for (unsigned i = 0; i < ehdr.e_phnum; i++) {
        Elf64_Phdr phdr;
        read_exact(fd, &phdr, sizeof phdr, (off_t)(ehdr.e_phoff + (uint64_t)i * ehdr.e_phentsize));
        if (phdr.p_type != PT_INTERP)
            continue;
        size_t len = strlen(interpreter);
        if (len + 1 > phdr.p_filesz)
            die("the path %s is too long for the program's interpreter field (%zu bytes at most); set TMPDIR to a "
                "shorter directory", interpreter, (size_t)phdr.p_filesz - 1);
        char *field = calloc(1, phdr.p_filesz);
        if (!field)
            die("out of memory");
        memcpy(field, interpreter, len);
        if (pwrite(fd, field, phdr.p_filesz, (off_t)phdr.p_offset) != (ssize_t)phdr.p_filesz)
            die("cannot patch %s: %s", program, strerror(errno));
        free(field);
        close(fd);
        return;
    }
    die("%s has no interpreter to set", program);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Only after a lost race: the directory is this launcher's own, fresh one. */
static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The directory is usable when it is ours alone: a real directory owned by this user that nobody else can write. */
static int usable(const char *dir, const char *program)
{
    struct stat st;
    if (lstat(dir, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        die("cannot look at %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        die("%s exists but is not a private directory of this user: remove it, or set TMPDIR elsewhere", dir);
    return access(program, X_OK) == 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        die("cannot open /proc/self/exe (is /proc mounted?): %s", strerror(errno));
    off_t end = lseek(self, 0, SEEK_END);
    struct trailer t;
    if (end < (off_t)sizeof t)
        die("this program has no bundle");
    read_exact(self, &t, sizeof t, end - (off_t)sizeof t);
    if (memcmp(t.magic, MAGIC, sizeof MAGIC) != 0 || memchr(t.name, '\0', sizeof t.name) == NULL)
        die("this program has no bundle");

    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char dir[4096], program[4096 + 16], interpreter[4096 + 32];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s.%u", tmp, t.name, (unsigned)geteuid()) >= sizeof dir)
        die("TMPDIR is too long");
    snprintf(program, sizeof program, "%s/%s", dir, MAIN_PROGRAM);

    if (!usable(dir, program)) {
        char work[4096 + 16];
        snprintf(work, sizeof work, "%s.XXXXXX", dir);
        if (!mkdtemp(work))
            die("cannot create a directory in %s to unpack into: %s (set TMPDIR to a writable directory)", tmp,
                strerror(errno));
        size_t packed = (size_t)t.payload_size, unpacked = (size_t)t.unpacked_size;
        unsigned char *in = malloc(packed), *out = malloc(unpacked ? unpacked : 1);
        if (!in || !out)
            die("out of memory unpacking the bundle (%zu bytes)", unpacked);
        read_exact(self, in, packed, (off_t)t.payload_offset);
        size_t got = ZSTD_decompress(out, unpacked, in, packed);
        if (ZSTD_isError(got) || got != unpacked)
            die("the bundle is damaged (%s)", ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size");
        free(in);
        unpack(out, unpacked, work);
        free(out);
        char work_program[4096 + 32];
        snprintf(work_program, sizeof work_program, "%s/%s", work, MAIN_PROGRAM);
        snprintf(interpreter, sizeof interpreter, "%s/%s", dir, LOADER);
        set_interpreter(work_program, interpreter);
        if (rename(work, dir) < 0) {
            int err = errno;
            remove_tree(work);
            if ((err != EEXIST && err != ENOTEMPTY) || !usable(dir, program))
                die("cannot move the bundle into %s: %s", dir, strerror(err));
        }
    }
    close(self);
    execv(program, argv);
    die("cannot run %s: %s", program, strerror(errno));
}
