/* Copy-on-write across fork. */
/* syscalls: fork */
#include "common.h"

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 'p', 4 * pg);
    static char data[8192] = {1};
    char *heap = malloc(100000);
    memset(heap, 'h', 100000);
    int fds[2];
    pipe(fds);
    pid_t c = fork();
    if (c == 0) {
        char res[6];
        res[0] = p[0] == 'p' ? '1' : '0';
        p[0] = 'c';
        data[0] = 99;
        heap[50000] = 'c';
        res[1] = p[0] == 'c' ? '1' : '0';
        res[2] = heap[99999] == 'h' ? '1' : '0';
        res[3] = p[pg] == 'p' ? '1' : '0';
        char local = 'l';
        res[4] = local == 'l' ? '1' : '0';
        res[5] = '1';
        write(fds[1], res, 6);
        _exit(0);
    }
    char res[6] = {0};
    read(fds[0], res, 6);
    waitpid(c, NULL, 0);
    CHECK("child_sees_parent_data", res[0] == '1');
    CHECK("child_write_visible_to_child", res[1] == '1');
    CHECK("child_sees_heap", res[2] == '1');
    CHECK("child_untouched_page", res[3] == '1');
    CHECK("child_stack_copy", res[4] == '1');
    CHECK("parent_mmap_unchanged", p[0] == 'p');
    CHECK("parent_data_unchanged", data[0] == 1);
    CHECK("parent_heap_unchanged", heap[50000] == 'h');
    p[pg] = 'q';
    c = fork();
    if (c == 0) _exit(p[pg] == 'q' ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    CHECK("parent_write_before_fork_seen", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        usleep(20000);
        _exit(p[2 * pg] == 'p' ? 0 : 1);
    }
    p[2 * pg] = 'z';
    waitpid(c, &st, 0);
    CHECK("parent_write_after_fork_not_seen", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    mprotect(p + 3 * pg, pg, PROT_READ);
    c = fork();
    if (c == 0) {
        p[3 * pg] = 1;
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("child_keeps_protection", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    int depth = 0;
    for (int i = 0; i < 3; i++) {
        c = fork();
        if (c != 0) {
            waitpid(c, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) depth = -100;
            break;
        }
        p[0] = (char)('0' + i);
        depth++;
    }
    if (depth > 0) _exit(p[0] == '0' + depth - 1 ? 0 : 1);
    CHECK("nested_fork_cow", depth == 0 && p[0] == 'p');
    return DONE();
}
