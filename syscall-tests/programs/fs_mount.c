/* mount and umount2 of tmpfs, proc and bind mounts, remounts, errors. */
/* syscalls: mount umount2 */
#include "common.h"
#include <sys/mount.h>
#include <sys/statfs.h>

#define TMPFS_MAGIC 0x01021994
#define PROC_SUPER_MAGIC 0x9fa0

int main(void) {
    /* Natively: a mount namespace of our own, so nothing reaches the host's table (the
     * sandbox has one table of its own; unshare may be refused there). */
    if (unshare(CLONE_NEWNS) == 0) mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
    scratch();
    mkdir("m", 0755);
    mkdir("src", 0755);
    mkdir("b", 0755);
    mkdir("p", 0755);
    put_file("src/f", "bound");
    put_file("m/under", "x");
    EXPECT_OK("mount_tmpfs", mount("tmpfs", "m", "tmpfs", 0, "size=64k,mode=700"));
    struct statfs sf;
    CHECK("tmpfs_statfs_type", statfs("m", &sf) == 0 && sf.f_type == TMPFS_MAGIC);
    struct stat st;
    CHECK("tmpfs_root_mode", stat("m", &st) == 0 && (st.st_mode & 07777) == 0700);
    CHECK("tmpfs_hides_below", access("m/under", F_OK) == -1 && errno == ENOENT);
    EXPECT_OK("tmpfs_write", put_file("m/new", "hello"));
    EXPECT_OK("remount_ro", mount(NULL, "m", NULL, MS_REMOUNT | MS_RDONLY, NULL));
    EXPECT_ERR("remount_ro_refuses_writes", open("m/other", O_CREAT | O_WRONLY, 0644), EROFS);
    EXPECT_OK("remount_rw", mount(NULL, "m", NULL, MS_REMOUNT, NULL));
    EXPECT_OK("remount_rw_writes", put_file("m/other", "x"));
    EXPECT_ERR("umount_not_a_mount", umount2("src", 0), EINVAL);
    EXPECT_ERR("umount_bad_flags", umount2("m", 0x100), EINVAL);
    EXPECT_OK("umount_tmpfs", umount2("m", 0));
    CHECK("umount_uncovers", access("m/under", F_OK) == 0 && access("m/new", F_OK) == -1);
    EXPECT_OK("mount_bind", mount("src", "b", NULL, MS_BIND, NULL));
    char buf[16] = {0};
    int fd = open("b/f", O_RDONLY);
    CHECK("bind_shows_source", fd >= 0 && read(fd, buf, sizeof buf) == 5 && !strcmp(buf, "bound"));
    close(fd);
    EXPECT_OK("bind_write_reaches_source", put_file("b/g", "y"));
    CHECK("bind_source_sees_write", access("src/g", F_OK) == 0);
    EXPECT_OK("umount_bind_detach", umount2("b", MNT_DETACH));
    CHECK("umount_bind_gone", access("b/f", F_OK) == -1);
    EXPECT_OK("mount_proc", mount("proc", "p", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    CHECK("proc_statfs_type", statfs("p", &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC);
    CHECK("proc_has_self", access("p/self/status", R_OK) == 0);
    EXPECT_OK("umount_proc", umount2("p", 0));
    EXPECT_ERR("mount_unknown_type", mount("x", "m", "nosuchfs", 0, NULL), ENODEV);
    EXPECT_ERR("mount_missing_target", mount("tmpfs", "nowhere", "tmpfs", 0, NULL), ENOENT);
    EXPECT_OK("make_private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
    return DONE();
}
