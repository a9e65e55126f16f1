/* SCM_RIGHTS and SCM_CREDENTIALS over AF_UNIX. */
/* syscalls: sendmsg recvmsg setsockopt */
#include "common.h"
#include <sys/socket.h>

static int send_fd(int s, int fd) {
    char c = 'F';
    struct iovec iov = {&c, 1};
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(s, &mh, 0);
}

static int recv_fd(int s, int flags) {
    char c;
    struct iovec iov = {&c, 1};
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    if (recvmsg(s, &mh, flags) != 1) return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (!cm || cm->cmsg_type != SCM_RIGHTS) return -2;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

int main(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int p[2];
    pipe2(p, O_NONBLOCK); /* a lost descriptor gives EAGAIN, not a hang */
    EXPECT_EQ("sendmsg_scm_rights", send_fd(sv[0], p[1]), 1);
    int got = recv_fd(sv[1], MSG_DONTWAIT);
    CHECK("recvmsg_scm_rights", got >= 0 && got != p[1]);
    CHECK("passed_fd_works", write(got, "z", 1) == 1);
    char c;
    CHECK("passed_fd_same_pipe", read(p[0], &c, 1) == 1 && c == 'z');
    send_fd(sv[0], p[1]);
    got = recv_fd(sv[1], MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    CHECK("msg_cmsg_cloexec", got >= 0 && fcntl(got, F_GETFD) == FD_CLOEXEC);
    EXPECT_ERR("sendmsg_bad_fd", send_fd(sv[0], 999), EBADF);
    send_fd(sv[0], p[1]);
    pid_t ch = fork();
    if (ch == 0) {
        int f = recv_fd(sv[1], MSG_DONTWAIT);
        _exit(f >= 0 && write(f, "c", 1) == 1 ? 0 : 1);
    }
    int st;
    waitpid(ch, &st, 0);
    CHECK("fd_passed_to_child", WIFEXITED(st) && WEXITSTATUS(st) == 0 && read(p[0], &c, 1) == 1 && c == 'c');
    send_fd(sv[0], p[1]);
    char small;
    struct iovec iov = {&small, 1};
    char cbuf[4];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    recvmsg(sv[1], &mh, MSG_DONTWAIT);
    CHECK("msg_ctrunc", mh.msg_flags & MSG_CTRUNC);
    int on = 1;
    EXPECT_OK("so_passcred", setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    write(sv[0], "x", 1);
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(struct ucred))]; } u;
    struct msghdr m2 = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    recvmsg(sv[1], &m2, MSG_DONTWAIT);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m2);
    struct ucred cr = {0};
    if (cm && cm->cmsg_type == SCM_CREDENTIALS) memcpy(&cr, CMSG_DATA(cm), sizeof cr);
    CHECK("scm_credentials_received", cm && cm->cmsg_type == SCM_CREDENTIALS);
    CHECK("scm_credentials_values", cr.pid == getpid() && cr.uid == getuid() && cr.gid == getgid());
    int d[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    EXPECT_EQ("dgram_scm_rights", send_fd(d[0], p[0]), 1);
    CHECK("dgram_recv_fd", recv_fd(d[1], MSG_DONTWAIT) >= 0);
    int spair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, spair);
    EXPECT_EQ("pass_socket_over_itself", send_fd(spair[0], spair[0]), 1);
    close(spair[0]);
    int back = recv_fd(spair[1], MSG_DONTWAIT);
    CHECK("received_own_peer", back >= 0);
    int st2[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, st2);
    write(st2[0], "ab", 2);
    send_fd(st2[0], p[1]);
    write(st2[0], "ef", 2);
    char six[6];
    union { struct cmsghdr h; char b[CMSG_SPACE(2 * sizeof(int))]; } u2;
    struct iovec iv6 = {six, sizeof six};
    struct msghdr m6 = {.msg_iov = &iv6, .msg_iovlen = 1, .msg_control = u2.b, .msg_controllen = sizeof u2.b};
    EXPECT_EQ("stream_read_stops_after_rights", recvmsg(st2[1], &m6, MSG_DONTWAIT), 3);
    cm = CMSG_FIRSTHDR(&m6);
    CHECK("stream_rights_delivered", cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)));
    EXPECT_EQ("stream_rest_after_rights", read(st2[1], six, sizeof six), 2);
    int two[2] = {p[0], p[1]};
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof two)]; } u3;
    char cc = 'T';
    struct iovec iv3 = {&cc, 1};
    struct msghdr m3 = {.msg_iov = &iv3, .msg_iovlen = 1, .msg_control = u3.b, .msg_controllen = sizeof u3.b};
    cm = CMSG_FIRSTHDR(&m3);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof two);
    memcpy(CMSG_DATA(cm), two, sizeof two);
    EXPECT_EQ("send_two_fds", sendmsg(st2[0], &m3, 0), 1);
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u4;
    struct msghdr m4 = {.msg_iov = &iv3, .msg_iovlen = 1, .msg_control = u4.b, .msg_controllen = CMSG_LEN(sizeof(int))};
    recvmsg(st2[1], &m4, MSG_DONTWAIT);
    cm = CMSG_FIRSTHDR(&m4);
    CHECK("two_fds_room_for_one_ctrunc", (m4.msg_flags & MSG_CTRUNC) && cm && cm->cmsg_len == CMSG_LEN(sizeof(int)));
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = 99;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    m4.msg_controllen = CMSG_SPACE(sizeof(int));
    EXPECT_ERR("sendmsg_bad_cmsg_type", sendmsg(st2[0], &m4, 0), EINVAL);
    cm->cmsg_len = 4;
    EXPECT_ERR("sendmsg_short_cmsg_len", sendmsg(st2[0], &m4, 0), EINVAL);
    return DONE();
}
