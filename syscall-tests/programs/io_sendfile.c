/* sendfile/copy_file_range/splice/tee. */
/* syscalls: sendfile copy_file_range splice tee */
#include "common.h"
#include <sys/sendfile.h>

int main(void) {
    scratch();
    put_file("src", "0123456789abcdef");
    int in = open("src", O_RDONLY);
    int out = open("dst", O_RDWR | O_CREAT, 0644);
    char buf[32];
    EXPECT_EQ("sendfile", sendfile(out, in, NULL, 10), 10);
    CHECK("sendfile_advances_in", lseek(in, 0, SEEK_CUR) == 10);
    off_t off = 4;
    EXPECT_EQ("sendfile_offset", sendfile(out, in, &off, 4), 4);
    CHECK("sendfile_offset_updated", off == 8 && lseek(in, 0, SEEK_CUR) == 10);
    CHECK("sendfile_content", pread(out, buf, 14, 0) == 14 && !memcmp(buf, "01234567894567", 14));
    EXPECT_EQ("sendfile_eof", (lseek(in, 0, SEEK_END), sendfile(out, in, NULL, 10)), 0);
    EXPECT_ERR("sendfile_ebadf", sendfile(out, 999, NULL, 1), EBADF);
    int ro = open("src", O_RDONLY);
    EXPECT_ERR("sendfile_out_rdonly", sendfile(ro, in, NULL, 1), EBADF);
    off_t neg = -1;
    EXPECT_ERR("sendfile_negative_offset", sendfile(out, in, &neg, 1), EINVAL);
    int p[2];
    pipe2(p, O_NONBLOCK); /* a failed transfer gives EAGAIN, not a hang */
    lseek(in, 0, SEEK_SET);
    EXPECT_EQ("sendfile_to_pipe", sendfile(p[1], in, NULL, 5), 5);
    CHECK("sendfile_pipe_content", read(p[0], buf, 5) == 5 && !memcmp(buf, "01234", 5));
    loff_t oi = 0, oo = 100;
    EXPECT_EQ("copy_file_range", copy_file_range(in, &oi, out, &oo, 6, 0), 6);
    CHECK("copy_file_range_content", pread(out, buf, 6, 100) == 6 && !memcmp(buf, "012345", 6));
    EXPECT_ERR("copy_file_range_flags", copy_file_range(in, &oi, out, &oo, 6, 1), EINVAL);
    EXPECT_ERR("copy_file_range_pipe", copy_file_range(p[0], NULL, out, NULL, 6, 0), EINVAL);
    lseek(in, 0, SEEK_SET);
    EXPECT_EQ("splice_file_to_pipe", splice(in, NULL, p[1], NULL, 8, 0), 8);
    EXPECT_EQ("splice_pipe_to_file", splice(p[0], NULL, out, NULL, 8, 0), 8);
    EXPECT_ERR("splice_no_pipe", splice(in, NULL, out, NULL, 8, 0), EINVAL);
    int q[2];
    pipe2(q, O_NONBLOCK);
    write(p[1], "tee!", 4);
    EXPECT_EQ("tee", tee(p[0], q[1], 4, 0), 4);
    CHECK("tee_keeps_source", read(p[0], buf, 4) == 4 && read(q[0], buf + 4, 4) == 4 && !memcmp(buf, "tee!tee!", 8));
    EXPECT_ERR("tee_same_pipe", tee(p[0], p[1], 4, 0), EINVAL);
    return DONE();
}
