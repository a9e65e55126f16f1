/* FD_CLOEXEC across execve: the program re-executes itself to check. */
/* syscalls: fcntl dup3 execve */
#include "common.h"

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "child")) {
        /* fd 10: no cloexec; fd 11: cloexec; fd 12: O_CLOEXEC from open. */
        int ok = fcntl(10, F_GETFD) == 0 && fcntl(11, F_GETFD) == -1 && errno == EBADF && fcntl(12, F_GETFD) == -1;
        char c;
        ok = ok && read(10, &c, 1) == 1 && c == 'z';
        return ok ? 0 : 3;
    }
    int p[2];
    pipe(p);
    dup2(p[0], 10);
    dup2(p[0], 11);
    fcntl(11, F_SETFD, FD_CLOEXEC);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup3(fd, 12, O_CLOEXEC);
    write(p[1], "z", 1);
    pid_t c = fork();
    if (c == 0) {
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("exec_ran", WIFEXITED(st) && WEXITSTATUS(st) != 127);
    CHECK("cloexec_closed_and_plain_kept", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        char *args[] = {argv[0], "child", NULL};
        RAW(SYS_execve, "/nonexistent/prog", args, environ);
        _exit(errno == ENOENT ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("failed_exec_keeps_process", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        RAW(SYS_execve, "/dev/null", argv, environ);
        _exit(errno == EACCES ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("exec_non_regular_eacces", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        RAW(SYS_execve, BADPTR, argv, environ);
        _exit(errno == EFAULT ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("exec_efault", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return DONE();
}
