/* execve/execveat: argv, envp, auxv, errors; the program re-executes itself. */
/* syscalls: execve execveat */
#include "common.h"
#include <sys/auxv.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 1 || argv[0][0] == 0) return 42; /* exec'd with an empty argv */
    if (argc > 1 && !strcmp(argv[1], "child")) {
        int ok = argc == 4 && !strcmp(argv[2], "a b") && !strcmp(argv[3], "") && getenv("BW_X") && !strcmp(getenv("BW_X"), "1");
        ok = ok && getauxval(AT_PAGESZ) == 4096 && getauxval(AT_RANDOM) != 0 && getauxval(AT_PHDR) != 0;
        ok = ok && getauxval(AT_EXECFN) != 0;
        return ok ? 0 : 5;
    }
    if (argc > 1 && !strcmp(argv[1], "count")) return argc;
    char *args[] = {argv[0], "child", "a b", "", NULL};
    char *env[] = {"BW_X=1", NULL};
    int st;
    pid_t c = fork();
    if (c == 0) {
        execve("/proc/self/exe", args, env);
        _exit(127);
    }
    waitpid(c, &st, 0);
    CHECK("execve_args_env_auxv", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        int fd = open("/proc/self/exe", O_RDONLY);
        RAW(SYS_execveat, fd, "", args, env, AT_EMPTY_PATH);
        _exit(127);
    }
    waitpid(c, &st, 0);
    CHECK("execveat_empty_path", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        char *noargs[] = {NULL};
        execve("/proc/self/exe", noargs, env);
        _exit(127);
    }
    waitpid(c, &st, 0);
    CHECK("execve_empty_argv_gets_empty_arg0", WIFEXITED(st) && WEXITSTATUS(st) == 42);
    c = fork();
    if (c == 0) {
        char *cargs[] = {argv[0], "count", "1", "2", NULL};
        execve("/proc/self/exe", cargs, env);
        _exit(127);
    }
    waitpid(c, &st, 0);
    CHECK("execve_argc", WIFEXITED(st) && WEXITSTATUS(st) == 4);
    EXPECT_ERR("execve_enoent", execve("/nonexistent", args, env), ENOENT);
    EXPECT_ERR("execve_eacces_dir", execve("/tmp", args, env), EACCES);
    scratch();
    put_file("noexec", "#!/bin/sh\n");
    chmod("noexec", 0644);
    EXPECT_ERR("execve_no_x_bit", execve("noexec", args, env), EACCES);
    put_file("garbage", "this is not an executable");
    chmod("garbage", 0755);
    EXPECT_ERR("execve_enoexec", execve("garbage", args, env), ENOEXEC);
    put_file("badinterp", "#!/nonexistent/interp\n");
    chmod("badinterp", 0755);
    EXPECT_ERR("execve_bad_interpreter", execve("badinterp", args, env), ENOENT);
    EXPECT_ERR("execve_efault_path", RAW(SYS_execve, BADPTR, args, env), EFAULT);
    EXPECT_ERR("execve_efault_argv", RAW(SYS_execve, "/proc/self/exe", BADPTR, env), EFAULT);
    EXPECT_ERR("execveat_bad_flags", RAW(SYS_execveat, AT_FDCWD, "/proc/self/exe", args, env, 0x1), EINVAL);
    char *big = malloc(200 * 1024);
    memset(big, 'a', 200 * 1024 - 1);
    big[200 * 1024 - 1] = 0;
    char *bigargs[] = {argv[0], big, NULL};
    EXPECT_ERR("execve_arg_too_long_e2big", execve("/proc/self/exe", bigargs, env), E2BIG);
    char shebang[300];
    snprintf(shebang, sizeof shebang, "#!%s count\n", "/proc/self/exe");
    (void)shebang;
    char self[256];
    long n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    char script[400];
    snprintf(script, sizeof script, "#!%s count\n", self);
    put_file("script", script);
    chmod("script", 0755);
    c = fork();
    if (c == 0) {
        char *sargs[] = {"script", "x", NULL};
        execve("script", sargs, env);
        _exit(127);
    }
    waitpid(c, &st, 0);
    /* argv becomes: interp, "count", "script", "x" */
    CHECK("execve_shebang", WIFEXITED(st) && WEXITSTATUS(st) == 4);
    return DONE();
}
