/* open/openat/openat2/creat: flags, modes and errors. */
/* syscalls: open openat openat2 creat */
#include "common.h"
#include <linux/openat2.h>

int main(void) {
    scratch();
    put_file("f", "hello");
    mkdir("d", 0755);
    int fd;
    EXPECT_OK("open_rdonly", fd = open("f", O_RDONLY));
    close(fd);
    EXPECT_ERR("open_enoent", open("nope", O_RDONLY), ENOENT);
    EXPECT_ERR("open_excl_exists", open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    EXPECT_OK("open_creat_new", fd = open("g", O_CREAT | O_EXCL | O_WRONLY, 0600));
    close(fd);
    struct stat st;
    CHECK("creat_mode_umask", stat("g", &st) == 0 && (st.st_mode & 0777) == (0600 & ~022 & 0777));
    EXPECT_ERR("open_dir_wronly", open("d", O_WRONLY), EISDIR);
    EXPECT_OK("open_dir_rdonly", fd = open("d", O_RDONLY));
    close(fd);
    EXPECT_ERR("open_directory_on_file", open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
    EXPECT_ERR("open_efault", open(BADPTR, O_RDONLY), EFAULT);
    EXPECT_ERR("open_enotdir_component", open("f/x", O_RDONLY), ENOTDIR);
    char longname[300];
    memset(longname, 'a', 299);
    longname[299] = 0;
    EXPECT_ERR("open_enametoolong", open(longname, O_RDONLY), ENAMETOOLONG);
    EXPECT_ERR("open_empty_path", open("", O_RDONLY), ENOENT);
    fd = open("f", O_WRONLY | O_TRUNC);
    CHECK("open_trunc", fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0);
    close(fd);
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    EXPECT_OK("openat_dirfd", fd = openat(dfd, "x", O_CREAT | O_WRONLY, 0644));
    close(fd);
    CHECK("openat_created_in_dir", access("d/x", F_OK) == 0);
    EXPECT_ERR("openat_bad_dirfd", openat(999, "x", O_RDONLY), EBADF);
    EXPECT_OK("openat_absolute_ignores_dirfd", fd = openat(999, "/", O_RDONLY));
    close(fd);
    int ffd = open("f", O_RDONLY);
    EXPECT_ERR("openat_file_dirfd", openat(ffd, "x", O_RDONLY), ENOTDIR);
    close(ffd);
    fd = open("f", O_RDONLY | O_CLOEXEC);
    CHECK("open_cloexec_flag", fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    close(fd);
    fd = open("f", O_RDWR);
    CHECK("open_getfl_rdwr", fd >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    close(fd);
    EXPECT_ERR("open_tmpfile_needs_write", open(".", O_TMPFILE | O_RDONLY, 0600), EINVAL);
    fd = open(".", O_TMPFILE | O_RDWR, 0600);
    if (fd < 0 && errno == EOPNOTSUPP)
        t_skip("open_tmpfile", "filesystem lacks O_TMPFILE");
    else
        CHECK("open_tmpfile", fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};
    fd = RAW(SYS_openat2, dfd, "x", &how, sizeof how);
    CHECK("openat2_beneath_ok", fd >= 0);
    close(fd);
    EXPECT_ERR("openat2_beneath_dotdot", RAW(SYS_openat2, dfd, "../f", &how, sizeof how), EXDEV);
    EXPECT_ERR("openat2_beneath_absolute", RAW(SYS_openat2, dfd, "/etc/passwd", &how, sizeof how), EXDEV);
    symlink("/etc/passwd", "d/abs");
    EXPECT_ERR("openat2_beneath_absolute_link", RAW(SYS_openat2, dfd, "abs", &how, sizeof how), EXDEV);
    symlink("x", "d/rel");
    CHECK("openat2_beneath_relative_link", (fd = RAW(SYS_openat2, dfd, "rel", &how, sizeof how)) >= 0);
    close(fd);
    struct open_how nosym = {.flags = O_RDONLY, .resolve = RESOLVE_NO_SYMLINKS};
    EXPECT_ERR("openat2_no_symlinks", RAW(SYS_openat2, dfd, "rel", &nosym, sizeof nosym), ELOOP);
    struct open_how nomagic = {.flags = O_RDONLY, .resolve = RESOLVE_NO_MAGICLINKS};
    EXPECT_ERR("openat2_no_magiclinks", RAW(SYS_openat2, AT_FDCWD, "/proc/self/exe", &nomagic, sizeof nomagic), ELOOP);
    struct open_how noxdev = {.flags = O_RDONLY, .resolve = RESOLVE_NO_XDEV};
    EXPECT_ERR("openat2_no_xdev", RAW(SYS_openat2, AT_FDCWD, "/proc/self/status", &noxdev, sizeof noxdev), EXDEV);
    struct open_how inroot = {.flags = O_RDONLY, .resolve = RESOLVE_IN_ROOT};
    CHECK("openat2_in_root_absolute", (fd = RAW(SYS_openat2, dfd, "/x", &inroot, sizeof inroot)) >= 0);
    close(fd);
    CHECK("openat2_in_root_dotdot_clamped", (fd = RAW(SYS_openat2, dfd, "../../x", &inroot, sizeof inroot)) >= 0);
    close(fd);
    EXPECT_ERR("openat2_in_root_absolute_link", RAW(SYS_openat2, dfd, "abs", &inroot, sizeof inroot), ENOENT);
    struct open_how both = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH | RESOLVE_IN_ROOT};
    EXPECT_ERR("openat2_beneath_and_in_root", RAW(SYS_openat2, dfd, "x", &both, sizeof both), EINVAL);
    EXPECT_ERR("openat2_small_size", RAW(SYS_openat2, dfd, "x", &how, 8), EINVAL);
    struct open_how bad = {.flags = O_RDONLY, .mode = 0644};
    EXPECT_ERR("openat2_mode_without_creat", RAW(SYS_openat2, dfd, "x", &bad, sizeof bad), EINVAL);
    EXPECT_OK("creat", fd = creat("c", 0644));
    CHECK("creat_is_wronly", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY);
    close(fd);
    symlink("f", "lnk");
    EXPECT_ERR("open_nofollow_symlink", open("lnk", O_RDONLY | O_NOFOLLOW), ELOOP);
    fd = open("lnk", O_PATH | O_NOFOLLOW);
    CHECK("open_path_nofollow", fd >= 0);
    char b[4];
    EXPECT_ERR("read_o_path_ebadf", read(fd, b, 1), EBADF);
    close(fd);
    close(dfd);
    return DONE();
}
