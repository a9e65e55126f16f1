/* System V message queues: keys, sending and receiving by type, full and empty queues,
 * blocking with signals and removal, MSG_COPY, and the msgctl commands. */
/* syscalls: msgget msgsnd msgrcv msgctl */
#include "common.h"
#include <sys/ipc.h>
#include <sys/msg.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

struct m {
    long mtype;
    char mtext[8192];
};

static struct m sbuf, rbuf;

static int send_text(int id, long type, const char *text, int flags) {
    sbuf.mtype = type;
    strcpy(sbuf.mtext, text);
    return msgsnd(id, &sbuf, strlen(text) + 1, flags);
}

/* Receives into rbuf; returns the size, and -1 on error. */
static ssize_t recv_type(int id, long type, size_t size, int flags) {
    memset(&rbuf, 0, sizeof rbuf);
    return msgrcv(id, &rbuf, size, type, flags);
}

/* Whether the effective set holds capability `cap`. */
static int has_cap(int cap) {
    static char status[8192];
    if (get_file("/proc/self/status", status, sizeof status) <= 0) return 0;
    char *p = strstr(status, "CapEff:");
    if (!p) return 0;
    unsigned long long eff = strtoull(p + 7, NULL, 16);
    return (eff >> cap) & 1;
}

static int qnum(int id) {
    struct msqid_ds ds;
    if (msgctl(id, IPC_STAT, &ds) != 0) return -1;
    return (int)ds.msg_qnum;
}

int main(void) {
    key_t key = (key_t)(0x5e200000 | ((getpid() & 0xffff) << 4));

    int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK("get_private", id >= 0);
    EXPECT_ERR("key_missing_enoent", msgget(key, 0600), ENOENT);
    int kid = msgget(key, IPC_CREAT | 0640);
    CHECK("key_create", kid >= 0 && kid != id);
    EXPECT_EQ("key_lookup", msgget(key, 0), kid);
    EXPECT_ERR("key_excl_eexist", msgget(key, IPC_CREAT | IPC_EXCL | 0600), EEXIST);

    struct msqid_ds ds;
    memset(&ds, 0xff, sizeof ds);
    EXPECT_EQ("stat_new", msgctl(id, IPC_STAT, &ds), 0);
    CHECK("stat_new_fields", ds.msg_qnum == 0 && ds.msg_cbytes == 0 && ds.msg_qbytes == 16384 &&
                                 ds.msg_lspid == 0 && ds.msg_lrpid == 0 && ds.msg_stime == 0 &&
                                 ds.msg_ctime != 0 && (ds.msg_perm.mode & 0777) == 0600);

    /* Sending. */
    EXPECT_EQ("send", send_text(id, 5, "five", 0), 0);
    memset(&ds, 0, sizeof ds);
    msgctl(id, IPC_STAT, &ds);
    CHECK("stat_after_send", ds.msg_qnum == 1 && ds.msg_cbytes == 5 && ds.msg_lspid == getpid() &&
                                 ds.msg_stime != 0);
    CHECK("proc_sysvipc_msg",
          sysvipc_row("msg",
                      "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid"
                      "  cuid  cgid      stime      rtime      ctime\n",
                      IPC_PRIVATE, id, 5));
    send_text(id, 2, "two", 0);
    send_text(id, 7, "seven", 0);
    send_text(id, 2, "two-b", 0);
    sbuf.mtype = 0;
    EXPECT_ERR("send_type_zero_einval", msgsnd(id, &sbuf, 1, 0), EINVAL);
    sbuf.mtype = -3;
    EXPECT_ERR("send_type_negative_einval", msgsnd(id, &sbuf, 1, 0), EINVAL);
    sbuf.mtype = 1;
    EXPECT_ERR("send_over_msgmax_einval", msgsnd(id, &sbuf, 8193, 0), EINVAL);
    EXPECT_ERR("send_negative_size_einval", msgsnd(id, &sbuf, (size_t)-1, 0), EINVAL);
    EXPECT_ERR("send_efault", msgsnd(id, BADPTR, 4, 0), EFAULT);
    EXPECT_ERR("send_bad_id_einval", msgsnd(-1, &sbuf, 4, 0), EINVAL);
    EXPECT_EQ("send_size_zero", msgsnd(id, &sbuf, 0, 0), 0);

    /* MSG_COPY: by position, without removing. */
    errno = 0;
    ssize_t n = recv_type(id, 1, sizeof rbuf.mtext, MSG_COPY | IPC_NOWAIT);
    if (n == -1 && errno == ENOSYS) {
        t_skip("msg_copy", "the kernel has no CONFIG_CHECKPOINT_RESTORE");
    } else {
        CHECK("msg_copy", n == 4 && rbuf.mtype == 2 && !strcmp(rbuf.mtext, "two") && qnum(id) == 5);
        EXPECT_ERR("msg_copy_past_end_enomsg",
                   recv_type(id, 9, sizeof rbuf.mtext, MSG_COPY | IPC_NOWAIT), ENOMSG);
        EXPECT_ERR("msg_copy_needs_nowait_einval", recv_type(id, 0, sizeof rbuf.mtext, MSG_COPY),
                   EINVAL);
        EXPECT_ERR("msg_copy_except_einval",
                   recv_type(id, 0, sizeof rbuf.mtext, MSG_COPY | IPC_NOWAIT | MSG_EXCEPT), EINVAL);
    }

    /* Receiving by type. Queue: 5 "five", 2 "two", 7 "seven", 2 "two-b", 1 "". */
    EXPECT_EQ("recv_type_eq", recv_type(id, 2, sizeof rbuf.mtext, 0), 4);
    CHECK("recv_type_eq_first", rbuf.mtype == 2 && !strcmp(rbuf.mtext, "two"));
    EXPECT_EQ("recv_lowest_le", recv_type(id, -6, sizeof rbuf.mtext, 0), 0);
    CHECK("recv_lowest_le_type", rbuf.mtype == 1);
    EXPECT_EQ("recv_except", recv_type(id, 5, sizeof rbuf.mtext, MSG_EXCEPT), 6);
    /* Queue: 5 "five", 2 "two-b". */
    CHECK("recv_except_first_other", rbuf.mtype == 7 && !strcmp(rbuf.mtext, "seven"));
    EXPECT_ERR("recv_too_big_e2big", recv_type(id, 0, 2, 0), E2BIG);
    EXPECT_EQ("recv_e2big_kept", qnum(id), 2);
    EXPECT_EQ("recv_noerror_truncates", recv_type(id, 0, 2, MSG_NOERROR), 2);
    CHECK("recv_noerror_text", rbuf.mtype == 5 && rbuf.mtext[0] == 'f' && rbuf.mtext[1] == 'i' &&
                                   rbuf.mtext[2] == 0);
    EXPECT_ERR("recv_no_match_enomsg", recv_type(id, 3, sizeof rbuf.mtext, IPC_NOWAIT), ENOMSG);
    EXPECT_EQ("recv_any", recv_type(id, 0, sizeof rbuf.mtext, 0), 6);
    EXPECT_ERR("recv_empty_enomsg", recv_type(id, 0, sizeof rbuf.mtext, IPC_NOWAIT), ENOMSG);
    EXPECT_ERR("recv_negative_size_einval", msgrcv(id, &rbuf, (size_t)-1, 0, IPC_NOWAIT), EINVAL);
    memset(&ds, 0, sizeof ds);
    msgctl(id, IPC_STAT, &ds);
    CHECK("stat_after_recv", ds.msg_qnum == 0 && ds.msg_cbytes == 0 && ds.msg_lrpid == getpid() &&
                                 ds.msg_rtime != 0);

    /* A full queue. */
    sbuf.mtype = 1;
    memset(sbuf.mtext, 'x', 8192);
    EXPECT_EQ("fill_1", msgsnd(id, &sbuf, 8192, 0), 0);
    EXPECT_EQ("fill_2", msgsnd(id, &sbuf, 8192, 0), 0);
    EXPECT_ERR("full_nowait_eagain", msgsnd(id, &sbuf, 1, IPC_NOWAIT), EAGAIN);
    pid_t c = fork();
    if (c == 0) {
        usleep(100 * 1000);
        _exit(msgrcv(id, &rbuf, 8192, 0, 0) == 8192 ? 0 : 1);
    }
    int st;
    BOUNDED("full_send_waits_for_receiver", 5)
    EXPECT_EQ("full_send_waits_for_receiver", msgsnd(id, &sbuf, 100, 0), 0);
    alarm(0);
    waitpid(c, &st, 0);
    CHECK("receiver_done", WIFEXITED(st) && WEXITSTATUS(st) == 0 && qnum(id) == 2);
    while (recv_type(id, 0, 8192, IPC_NOWAIT) >= 0) {
    }

    /* Blocking receive: woken by another process, interrupted by a signal. */
    c = fork();
    if (c == 0) {
        usleep(100 * 1000);
        _exit(send_text(id, 9, "late", 0) == 0 ? 0 : 1);
    }
    BOUNDED("recv_woken_by_sender", 5)
    EXPECT_EQ("recv_woken_by_sender", recv_type(id, 9, sizeof rbuf.mtext, 0), 5);
    alarm(0);
    waitpid(c, &st, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = t_noop;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    EXPECT_ERR("recv_signal_eintr_not_restarted", recv_type(id, 0, sizeof rbuf.mtext, 0), EINTR);
    alarm(0);

    /* msgctl. */
    memset(&ds, 0, sizeof ds);
    msgctl(id, IPC_STAT, &ds);
    ds.msg_perm.mode = 0622;
    ds.msg_qbytes = 100;
    EXPECT_EQ("set", msgctl(id, IPC_SET, &ds), 0);
    memset(&ds, 0, sizeof ds);
    msgctl(id, IPC_STAT, &ds);
    CHECK("set_seen", (ds.msg_perm.mode & 0777) == 0622 && ds.msg_qbytes == 100);
    sbuf.mtype = 1;
    EXPECT_ERR("set_qbytes_limits_send", msgsnd(id, &sbuf, 101, IPC_NOWAIT), EAGAIN);
    ds.msg_qbytes = 100000;
    if (has_cap(24)) /* CAP_SYS_RESOURCE */
        EXPECT_EQ("set_qbytes_over_msgmnb", msgctl(id, IPC_SET, &ds), 0);
    else
        EXPECT_ERR("set_qbytes_over_msgmnb", msgctl(id, IPC_SET, &ds), EPERM);
    EXPECT_ERR("set_efault", msgctl(id, IPC_SET, BADPTR), EFAULT);
    EXPECT_ERR("stat_efault", msgctl(id, IPC_STAT, BADPTR), EFAULT);
    EXPECT_ERR("bad_cmd_einval", msgctl(id, 1234, &ds), EINVAL);
    struct msginfo mi;
    memset(&mi, 0, sizeof mi);
    int maxidx = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
    CHECK("ipc_info", maxidx >= id % 32768 && mi.msgmax == 8192 && mi.msgmnb == 16384 &&
                          mi.msgmni >= 1 && mi.msgssz == 16);
    memset(&mi, 0, sizeof mi);
    CHECK("msg_info", msgctl(0, MSG_INFO, (struct msqid_ds *)&mi) == maxidx && mi.msgpool >= 2);
    EXPECT_EQ("msg_stat_index", msgctl(id % 32768, MSG_STAT, &ds), id);
    EXPECT_EQ("msg_stat_any_index", msgctl(id % 32768, MSG_STAT_ANY, &ds), id);

    /* Another user: mode 0622 lets others send but not receive; 0640 neither. */
    if (geteuid() == 0) {
        c = fork();
        if (c == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
            int bad = 0;
            if (send_text(id, 1, "n", IPC_NOWAIT) != 0) bad |= 1;
            if (recv_type(id, 0, 10, IPC_NOWAIT) != -1 || errno != EACCES) bad |= 2;
            if (send_text(kid, 1, "n", IPC_NOWAIT) != -1 || errno != EACCES) bad |= 4;
            if (msgctl(id, IPC_RMID, NULL) != -1 || errno != EPERM) bad |= 8;
            struct msqid_ds d;
            if (msgctl(kid, IPC_STAT, &d) != -1 || errno != EACCES) bad |= 16;
            _exit(bad);
        }
        waitpid(c, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            t_fail("perm_other_user", "child status %#x", st);
        else
            t_ok("perm_other_user");
    } else {
        t_skip("perm_other_user", "needs root to switch users");
    }

    /* IPC_RMID wakes a blocked receiver with EIDRM. */
    while (recv_type(id, 0, 8192, IPC_NOWAIT) >= 0) {
    }
    c = fork();
    if (c == 0) _exit(recv_type(id, 0, 100, 0) == -1 && errno == EIDRM ? 0 : 1);
    usleep(200 * 1000);
    EXPECT_EQ("rmid", msgctl(id, IPC_RMID, NULL), 0);
    waitpid(c, &st, 0);
    CHECK("rmid_wakes_receiver_eidrm", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_ERR("rmid_then_send_einval", send_text(id, 1, "x", 0), EINVAL);
    EXPECT_ERR("rmid_then_recv_einval", recv_type(id, 0, 10, IPC_NOWAIT), EINVAL);
    EXPECT_EQ("rmid_key", msgctl(kid, IPC_RMID, NULL), 0);
    EXPECT_ERR("rmid_key_gone", msgget(key, 0), ENOENT);
    return DONE();
}
