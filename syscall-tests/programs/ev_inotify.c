/* inotify. */
/* syscalls: inotify_init1 inotify_add_watch inotify_rm_watch */
#include "common.h"
#include <sys/inotify.h>

static int events(int fd, uint32_t *masks, int max) {
    char buf[4096] __attribute__((aligned(8)));
    int n = read(fd, buf, sizeof buf), k = 0;
    for (int off = 0; n > 0 && off < n && k < max;) {
        struct inotify_event *e = (struct inotify_event *)(buf + off);
        masks[k++] = e->mask;
        off += sizeof *e + e->len;
    }
    return n < 0 ? -1 : k;
}

int main(void) {
    scratch();
    int in;
    EXPECT_OK("inotify_init1", in = inotify_init1(IN_NONBLOCK));
    EXPECT_ERR("inotify_init1_bad_flags", inotify_init1(1), EINVAL);
    int wd;
    EXPECT_OK("inotify_add_watch", wd = inotify_add_watch(in, ".", IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO));
    EXPECT_EQ("inotify_add_same_wd", inotify_add_watch(in, ".", IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO), wd);
    EXPECT_ERR("inotify_no_events_eagain", read(in, &wd, 4), EAGAIN);
    uint32_t m[8];
    put_file("a", "x");
    int n = events(in, m, 8);
    CHECK("inotify_create_event", n >= 1 && (m[0] & IN_CREATE));
    CHECK("inotify_modify_event", n >= 2 && (m[1] & IN_MODIFY));
    rename("a", "b");
    n = events(in, m, 8);
    CHECK("inotify_move_pair", n == 2 && (m[0] & IN_MOVED_FROM) && (m[1] & IN_MOVED_TO));
    unlink("b");
    n = events(in, m, 8);
    CHECK("inotify_delete_event", n == 1 && (m[0] & IN_DELETE));
    mkdir("d", 0755);
    n = events(in, m, 8);
    CHECK("inotify_mkdir_isdir", n == 1 && (m[0] & IN_CREATE) && (m[0] & IN_ISDIR));
    EXPECT_ERR("inotify_add_enoent", inotify_add_watch(in, "nope", IN_ALL_EVENTS), ENOENT);
    EXPECT_ERR("inotify_add_zero_mask", inotify_add_watch(in, ".", 0), EINVAL);
    EXPECT_ERR("inotify_add_not_inotify", inotify_add_watch(0, ".", IN_ALL_EVENTS), EINVAL);
    put_file("f", "");
    EXPECT_ERR("inotify_onlydir_on_file", inotify_add_watch(in, "f", IN_ALL_EVENTS | IN_ONLYDIR), ENOTDIR);
    events(in, m, 8);
    int fw = inotify_add_watch(in, "f", IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
    int fd = open("f", O_WRONLY);
    close(fd);
    n = events(in, m, 8);
    CHECK("inotify_open_close_write", n == 2 && (m[0] & IN_OPEN) && (m[1] & IN_CLOSE_WRITE));
    EXPECT_OK("inotify_rm_watch", inotify_rm_watch(in, fw));
    n = events(in, m, 8);
    CHECK("inotify_rm_watch_ignored", n == 1 && (m[0] & IN_IGNORED));
    EXPECT_ERR("inotify_rm_watch_bad", inotify_rm_watch(in, 12345), EINVAL);
    char small[8];
    put_file("g", "");
    EXPECT_ERR("inotify_read_small_buffer", read(in, small, sizeof small), EINVAL);
    return DONE();
}
