/* setxattr/getxattr/listxattr/removexattr. */
/* syscalls: setxattr getxattr listxattr removexattr fgetxattr */
#include "common.h"
#include <sys/xattr.h>

int main(void) {
    scratch();
    put_file("f", "x");
    char buf[256];
    long r = setxattr("f", "user.a", "va", 2, 0);
    if (r == -1 && errno == EOPNOTSUPP) {
        t_skip("xattr", "filesystem lacks user xattrs");
        return DONE();
    }
    CHECK("setxattr", r == 0);
    EXPECT_EQ("getxattr_len", getxattr("f", "user.a", buf, sizeof buf), 2);
    CHECK("getxattr_value", memcmp(buf, "va", 2) == 0);
    EXPECT_EQ("getxattr_size_query", getxattr("f", "user.a", NULL, 0), 2);
    EXPECT_ERR("getxattr_erange", getxattr("f", "user.a", buf, 1), ERANGE);
    EXPECT_ERR("getxattr_enodata", getxattr("f", "user.none", buf, sizeof buf), ENODATA);
    EXPECT_ERR("setxattr_create_exists", setxattr("f", "user.a", "x", 1, XATTR_CREATE), EEXIST);
    EXPECT_ERR("setxattr_replace_missing", setxattr("f", "user.b", "x", 1, XATTR_REPLACE), ENODATA);
    EXPECT_OK("setxattr_replace", setxattr("f", "user.a", "new", 3, XATTR_REPLACE));
    EXPECT_OK("setxattr_second", setxattr("f", "user.b", "", 0, 0));
    long n = listxattr("f", buf, sizeof buf);
    CHECK("listxattr", n == 14 && memmem(buf, n, "user.a", 7) && memmem(buf, n, "user.b", 7));
    EXPECT_EQ("listxattr_size_query", listxattr("f", NULL, 0), 14);
    EXPECT_ERR("listxattr_erange", listxattr("f", buf, 3), ERANGE);
    EXPECT_OK("removexattr", removexattr("f", "user.b"));
    EXPECT_ERR("removexattr_missing", removexattr("f", "user.b"), ENODATA);
    EXPECT_ERR("setxattr_bad_namespace", setxattr("f", "bogus.a", "x", 1, 0), EOPNOTSUPP);
    EXPECT_ERR("setxattr_bad_flags", setxattr("f", "user.c", "x", 1, 4), EINVAL);
    EXPECT_ERR("setxattr_empty_name", setxattr("f", "", "x", 1, 0), ERANGE);
    int fd = open("f", O_RDONLY);
    CHECK("fgetxattr", fgetxattr(fd, "user.a", buf, sizeof buf) == 3 && !memcmp(buf, "new", 3));
    EXPECT_ERR("fgetxattr_ebadf", fgetxattr(999, "user.a", buf, sizeof buf), EBADF);
    close(fd);
    EXPECT_ERR("getxattr_enoent", getxattr("nope", "user.a", buf, sizeof buf), ENOENT);
    return DONE();
}
