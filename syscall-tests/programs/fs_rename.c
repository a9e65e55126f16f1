/* rename/renameat/renameat2. */
/* syscalls: rename renameat renameat2 */
#include "common.h"

int main(void) {
    scratch();
    put_file("a", "A");
    put_file("b", "B");
    mkdir("d", 0755);
    mkdir("e", 0755);
    char buf[8];
    EXPECT_OK("rename_basic", rename("a", "c"));
    CHECK("rename_old_gone", access("a", F_OK) == -1 && errno == ENOENT);
    EXPECT_OK("rename_replace", rename("c", "b"));
    CHECK("rename_replaced_content", get_file("b", buf, sizeof buf) == 1 && buf[0] == 'A');
    EXPECT_ERR("rename_enoent", rename("nope", "x"), ENOENT);
    EXPECT_ERR("rename_file_over_dir", rename("b", "d"), EISDIR);
    EXPECT_ERR("rename_dir_over_file", rename("d", "b"), ENOTDIR);
    put_file("e/x", "x");
    EXPECT_ERR("rename_dir_over_nonempty", rename("d", "e"), ENOTEMPTY);
    EXPECT_ERR("rename_dir_into_self", rename("d", "d/sub"), EINVAL);
    EXPECT_OK("rename_same_file_noop", rename("b", "b"));
    EXPECT_OK("rename_dir", rename("d", "d2"));
    put_file("p", "P");
    put_file("q", "Q");
    EXPECT_ERR("renameat2_noreplace", RAW(SYS_renameat2, AT_FDCWD, "p", AT_FDCWD, "q", RENAME_NOREPLACE), EEXIST);
    EXPECT_OK("renameat2_exchange", RAW(SYS_renameat2, AT_FDCWD, "p", AT_FDCWD, "q", RENAME_EXCHANGE));
    CHECK("renameat2_exchanged", get_file("p", buf, sizeof buf) == 1 && buf[0] == 'Q');
    EXPECT_ERR("renameat2_exchange_missing", RAW(SYS_renameat2, AT_FDCWD, "p", AT_FDCWD, "zz", RENAME_EXCHANGE), ENOENT);
    EXPECT_ERR("renameat2_both_flags", RAW(SYS_renameat2, AT_FDCWD, "p", AT_FDCWD, "q", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    EXPECT_ERR("renameat2_bad_flags", RAW(SYS_renameat2, AT_FDCWD, "p", AT_FDCWD, "q", 0x100), EINVAL);
    EXPECT_ERR("rename_efault", rename(BADPTR, "x"), EFAULT);
    EXPECT_ERR("rename_dot", rename(".", "x"), EBUSY);
    int fd = open("e", O_RDONLY | O_DIRECTORY);
    EXPECT_OK("renameat_dirfd", renameat(fd, "x", AT_FDCWD, "moved"));
    CHECK("renameat_moved", access("moved", F_OK) == 0);
    close(fd);
    return DONE();
}
