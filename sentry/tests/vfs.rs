//! The file syscalls under the Sentry, over the host root served by a real Gofer with the
//! overlay on top: a C program exercises them, and its output must be what it prints
//! natively (where it passes first).

mod common;

use std::process::Command;

use sentry::kernel::ExitStatus;

const FILES: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Prints a call, its result and, when it failed, the errno's name. */
#define T(expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%-58s %ld %s\n", #expr, r_, r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

int main(int argc, char **argv) {
    char dir[] = "/tmp/bulwark-vfs-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    umask(022); /* the caller's umask is not the test's business */
    T(chdir(dir));
    char buf[64] = {0};
    struct stat st;

    int fd;
    T(fd = open("f", O_CREAT | O_EXCL | O_WRONLY, 0644));
    T(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644));
    T(write(fd, "hello world", 11));
    T(read(fd, buf, 5));
    T(lseek(fd, 0, SEEK_END));
    T(lseek(fd, -1, SEEK_SET));
    T(close(fd));
    T(close(fd));
    struct { unsigned long long flags, mode, resolve; } how = {O_RDONLY, 0, 0};
    T(close(syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how)));
    T(syscall(SYS_openat2, AT_FDCWD, "f", &how, 16));
    how.flags = 1ULL << 40;
    T(syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how));
    how.flags = O_RDONLY; how.mode = 0644;
    T(syscall(SYS_openat2, AT_FDCWD, "f", &how, sizeof how));
    T(fd = open("f", O_RDWR | O_APPEND));
    T(write(fd, "!", 1));
    T(pread(fd, buf, 12, 0));
    printf("contents: %s\n", buf);
    T(fcntl(fd, F_GETFL) & (O_APPEND | O_ACCMODE));
    T(ftruncate(fd, 5));
    T(fstat(fd, &st) == 0 && st.st_size == 5);
    T(fcntl(fd, F_DUPFD, 200));
    T(fcntl(200, F_GETFD));
    T(fcntl(fd, F_DUPFD_CLOEXEC, 200));
    T(fcntl(201, F_GETFD));
    T(dup2(fd, 210));
    T(dup3(fd, fd, 0));
    T(lseek(210, 0, SEEK_SET));
    T(read(fd, buf, 3));
    T(close(210) + close(201) + close(200));

    int lf;
    T(lf = open("f", O_RDWR));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    T(fcntl(lf, F_SETLK, &fl));
    pid_t child = fork();
    if (child == 0) {
        struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
        int r = fcntl(lf, F_SETLK, &g), e = errno;
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        fcntl(lf, F_GETLK, &q);
        struct flock h = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 5};
        int ok = r == -1 && e == EAGAIN && q.l_type == F_WRLCK && q.l_pid == getppid()
            && q.l_len == 10 && fcntl(lf, F_SETLK, &h) == 0;
        _exit(ok ? 0 : 1);
    }
    int wst;
    T(waitpid(child, &wst, 0) == child && WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
    fl.l_type = F_UNLCK;
    T(fcntl(lf, F_SETLK, &fl));
    T(flock(lf, LOCK_EX | LOCK_NB));
    int lf2;
    T(lf2 = open("f", O_RDONLY));
    T(flock(lf2, LOCK_SH | LOCK_NB));
    T(flock(lf, LOCK_UN));
    T(flock(lf2, LOCK_SH | LOCK_NB));
    T(close(lf2) + close(lf));

    T(mkdir("sub", 0755));
    T(mkdir("sub", 0755));
    T(close(open("sub/inner", O_CREAT | O_WRONLY, 0600)));
    T(rmdir("sub"));
    T(unlink("sub"));
    T(rmdir("f"));
    T(rmdir("."));
    T(open("f/", O_RDONLY));
    T(open("sub", O_WRONLY));
    T(open("f", O_RDONLY | O_DIRECTORY));
    T(open("nope/x", O_RDONLY));
    T(open("f/x", O_RDONLY));
    T(symlink("f", "lnk"));
    T(readlink("lnk", buf, sizeof buf));
    T(readlink("f", buf, sizeof buf));
    T(open("lnk", O_RDONLY | O_NOFOLLOW));
    T(symlink("b", "a"));
    T(symlink("a", "b"));
    T(open("a", O_RDONLY));
    T(symlink("made", "dangling"));
    T(symlink("dangling", "chain"));
    T(close(open("chain", O_CREAT | O_WRONLY, 0644)));
    T(lstat("made", &st) == 0 && S_ISREG(st.st_mode));
    T(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644));
    T(unlink("made") + unlink("dangling") + unlink("chain"));
    T(open("a", O_CREAT | O_WRONLY, 0644));
    T(lstat("lnk", &st) == 0 && S_ISLNK(st.st_mode));
    T(stat("lnk", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 5);
    T(rename("f", "sub"));
    T(rename("sub", "sub/x"));
    T(syscall(SYS_renameat2, AT_FDCWD, "lnk", AT_FDCWD, "a", 1 /* NOREPLACE */));
    T(rename("sub/inner", "moved"));
    T(access("sub/inner", F_OK));
    T(link("f", "f2"));
    T(stat("f", &st) == 0 && st.st_nlink == 2);
    T(link("sub", "sub2"));
    T(unlink("f2"));
    T(access("f", R_OK | W_OK));
    T(access("nope", F_OK));
    T(truncate("moved", 3000));
    T(stat("moved", &st) == 0 && st.st_size == 3000);
    int ci, co;
    T(ci = open("moved", O_RDONLY));
    T(co = open("copy", O_CREAT | O_WRONLY, 0600));
    loff_t oi = 100;
    T(copy_file_range(ci, &oi, co, NULL, 5000, 0));
    T(oi);
    T(copy_file_range(ci, NULL, co, NULL, 10, 1));
    T(copy_file_range(co, NULL, ci, NULL, 10, 0));
    T(close(ci) + close(co));
    T(stat("copy", &st) == 0 && st.st_size == 2900);
    T(unlink("copy"));

    DIR *d = opendir(".");
    char *names[32]; int n = 0; struct dirent *e;
    while ((e = readdir(d)) && n < 32) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("listing:");
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");

    int dfd;
    T(dfd = open(".", O_RDONLY | O_DIRECTORY));
    T(fstatat(dfd, "f", &st, 0) == 0 && st.st_size == 5);
    T(fstatat(dfd, "", &st, AT_EMPTY_PATH) == 0 && S_ISDIR(st.st_mode));
    T(fstatat(dfd, "", &st, 0));
    T(close(openat(dfd, "sub/new", O_CREAT | O_WRONLY, 0600)));
    T(unlinkat(dfd, "sub", AT_REMOVEDIR));
    T(unlinkat(dfd, "sub/new", 0));
    T(unlinkat(dfd, "sub", AT_REMOVEDIR));
    T(close(dfd));

    T(umask(077));
    T(close(creat("masked", 0666)));
    T(stat("masked", &st) == 0 && (st.st_mode & 0777) == 0600);
    T(chmod("masked", 0640));
    T(stat("masked", &st) == 0 && (st.st_mode & 07777) == 0640);

    T(open(".", O_TMPFILE | O_RDONLY, 0600));
    T(open("f", O_TMPFILE | O_RDWR, 0600));
    int tmp;
    T(tmp = open(".", O_TMPFILE | O_RDWR, 0600));
    T(write(tmp, "tmpfile", 7));
    T(fstat(tmp, &st) == 0 && st.st_nlink == 0 && st.st_size == 7);
    T(linkat(tmp, "", AT_FDCWD, "named", AT_EMPTY_PATH));
    T(stat("named", &st) == 0 && st.st_nlink == 1 && st.st_size == 7);
    T(close(tmp));
    T(unlink("named"));
    T(tmp = open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600));
    T(linkat(tmp, "", AT_FDCWD, "named", AT_EMPTY_PATH));
    T(close(tmp));

    int p[2];
    T(pipe2(p, O_CLOEXEC));
    T(write(p[1], "pipe!", 5));
    int avail = 0;
    T(ioctl(p[0], FIONREAD, &avail) == 0 && avail == 5);
    T(ioctl(p[0], TCGETS, buf));
    T(lseek(p[0], 0, SEEK_SET));
    struct pollfd pf[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}};
    T(poll(pf, 3, 0));
    T(pf[0].revents + 100 * pf[1].revents + 10000 * pf[2].revents);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 0};
    T(select(p[0] + 1, &rs, NULL, NULL, &tv));
    T(close(p[1]));
    T(poll(pf, 1, 0));
    T(pf[0].revents);
    T(read(p[0], buf, sizeof buf));
    T(read(p[0], buf, sizeof buf));
    T(close(p[0]));

    T(fd = open("f", O_RDWR));
    char *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    T(m != MAP_FAILED);
    m[0] = 'J';
    T(pread(fd, buf, 5, 0));
    printf("through the mapping: %.5s\n", buf);
    T(pwrite(fd, "Y", 1, 1));
    printf("written, mapped: %.5s\n", m);
    char *priv = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    priv[2] = 'Z';
    T(pread(fd, buf, 5, 0));
    printf("private stays private: %.5s %.5s\n", buf, priv);
    T(mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, open("f", O_RDONLY), 0) == MAP_FAILED);
    T(close(fd));

    T(fd = open("/dev/null", O_RDWR));
    T(write(fd, "x", 1));
    T(read(fd, buf, 1));
    T(close(fd));
    T(fd = open("/dev/full", O_WRONLY));
    T(write(fd, "x", 1));
    T(close(fd));
    T(fd = open("/dev/zero", O_RDONLY));
    T(read(fd, buf, 4) == 4 && buf[0] == 0 && buf[3] == 0);
    T(close(fd));

    char cwd[PATH_MAX], exe[PATH_MAX] = {0}, real[PATH_MAX];
    T(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, dir) == 0);
    T(readlink("/proc/self/exe", exe, sizeof exe) > 0 && strcmp(exe, realpath(argv[0], real)) == 0);
    T(readlink("/proc/self/cwd", exe, sizeof exe));
    T(getcwd(cwd, 2) == NULL);
    T(chdir("f"));
    T(chdir(".."));
    T(open(dir, O_RDONLY | O_PATH) >= 0);

    char path[PATH_MAX];
    const char *rm[] = {"f", "lnk", "a", "b", "moved", "masked"};
    for (unsigned i = 0; i < sizeof rm / sizeof *rm; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
        T(unlink(path));
    }
    T(rmdir(dir));
    T(access(dir, F_OK));
    return 0;
}
"#;

const PERMS: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T(expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%-52s %ld %s\n", #expr, r_, r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

int main(void) {
    char dir[] = "/tmp/bulwark-perms-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    T(chdir(dir));
    T(getuid() == 65534 && geteuid() == 65534);
    T(open("/etc/shadow", O_RDONLY));
    T(open("/etc/passwd", O_WRONLY));
    T(open("/etc/passwd", O_RDONLY) >= 0);
    T(access("/etc/passwd", W_OK));
    T(access("/etc/passwd", R_OK));
    T(mkdir("/etc/nope", 0755));
    T(unlink("/etc/passwd"));
    T(chmod("/etc/passwd", 0777));
    T(chown("/etc/passwd", 65534, 65534));
    T(close(open("mine", O_CREAT | O_WRONLY, 0600)));
    T(chmod("mine", 0));
    T(open("mine", O_RDONLY));
    T(access("mine", F_OK));
    T(chmod("mine", 0700));
    T(access("mine", X_OK));
    T(mkdir("sub", 0300));
    T(close(open("sub/f", O_CREAT | O_WRONLY, 0600)));
    T(chmod("sub", 0600));
    T(open("sub/f", O_RDONLY));
    T(chmod("sub", 0700));
    T(unlink("sub/f") + rmdir("sub") + unlink("mine"));
    T(chdir("/"));
    T(rmdir(dir));
    return 0;
}
"#;

fn check_files(platform: &str) {
    let prog = common::compile("files", FILES, &["-static", "-O1"]);
    let native = Command::new(&prog).output().unwrap();
    let native_out = String::from_utf8(native.stdout).unwrap();
    assert!(native.status.success(), "the program passes natively first");
    let Some((status, out)) = common::run_in_sandbox(platform, &prog, &[prog.to_str().unwrap()])
    else {
        return;
    };
    let (want, got): (Vec<_>, Vec<_>) = (native_out.lines().collect(), out.lines().collect());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w, "the first line that differs from Linux");
    }
    assert_eq!((status, got.len()), (ExitStatus::Exited(0), want.len()));
}

fn check_perms(platform: &str) {
    let prog = common::compile("perms", PERMS, &["-static", "-O1"]);
    std::fs::set_permissions(
        prog.parent().unwrap(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let native = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&prog)
        .output()
        .unwrap();
    let native_out = String::from_utf8(native.stdout).unwrap();
    assert!(
        native.status.success(),
        "passes natively first: {native_out}"
    );
    let Some((status, out)) =
        common::run_in_sandbox_as(platform, &prog, &[prog.to_str().unwrap()], 65534)
    else {
        return;
    };
    for (w, g) in native_out.lines().zip(out.lines()) {
        assert_eq!(g, w, "the first line that differs from Linux");
    }
    assert_eq!(
        (status, out.lines().count()),
        (ExitStatus::Exited(0), native_out.lines().count())
    );
}

#[test]
fn permissions_on_systrap() {
    check_perms("systrap");
}

#[test]
fn permissions_on_kvm() {
    check_perms("kvm");
}

#[test]
fn files_on_systrap() {
    check_files("systrap");
}

#[test]
fn files_on_kvm() {
    check_files("kvm");
}
