//! OCI hooks, run as runc runs them: each hook's `path` with its `args` (the first is
//! its `argv[0]`) and `env` (only those), the container's state as JSON on its standard
//! input, killed after `timeout` seconds.
//!
//! When each list runs: `prestart`, `createRuntime` and `createContainer` in `create`,
//! once the sandbox is up and before `create` returns; `startContainer` in `start`, just
//! before the program is let run; `poststart` once it runs; `poststop` in `delete` (and
//! when `run` sees the container end). runc runs `createContainer` and `startContainer`
//! inside the container's namespaces; a sandbox has no host namespaces a host binary
//! could enter (its processes live in the Sentry), so Bulwark runs them on the host,
//! in the runtime's namespaces, at the matching moment, as gVisor's runsc does. A
//! failing `prestart`, `createRuntime`, `createContainer` or `startContainer` hook fails
//! the operation; `poststart` and `poststop` failures are logged.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::spec::Hook;

/// Runs `hooks` in order with `state` (the OCI state JSON) on their standard input;
/// stops at the first failure.
pub fn run(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> anyhow::Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, state).with_context(|| format!("{kind} hook #{i} ({})", hook.path))?;
    }
    Ok(())
}

/// Runs `hooks` and logs failures instead of returning them (poststart, poststop).
pub fn run_logged(kind: &str, hooks: &[Hook], state: &serde_json::Value) {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(hook, state) {
            log::warn!("{kind} hook #{i} ({}): {e:#}", hook.path);
        }
    }
}

fn run_one(hook: &Hook, state: &serde_json::Value) -> anyhow::Result<()> {
    let mut command = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        command.arg0(argv0).args(rest);
    }
    command.env_clear();
    for kv in &hook.env {
        match kv.split_once('=') {
            Some((k, v)) => command.env(k, v),
            None => command.env(kv, ""),
        };
    }
    // Its own process group, so a timeout ends whatever it started too.
    command.process_group(0);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting it")?;
    // A hook that does not read its input must not block us: write from a thread.
    let input = serde_json::to_vec(state)?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().context("no stdout")?;
    let mut err = child.stderr.take().context("no stderr")?;
    let readers = [
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        }),
    ];
    let deadline = hook
        .timeout
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(pgid) = rustix::process::Pid::from_raw(i32::try_from(child.id())?) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.wait();
            bail!("timed out after {}s", hook.timeout.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let [out, err] = readers.map(|r| r.join().unwrap_or_default());
    if !status.success() {
        let output = String::from_utf8_lossy(if err.is_empty() { &out } else { &err });
        bail!("{status}: {}", output.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hi".into()],
            timeout: Some(5),
        }
    }

    #[test]
    fn state_on_stdin_env_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let state = serde_json::json!({"id": "c1", "status": "creating"});
        let h = hook(&format!(
            "cat > {}; echo $GREETING >> {}",
            out.display(),
            out.display()
        ));
        run("prestart", &[h], &state).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with(r#"{"id":"c1","status":"creating"}"#),
            "{text}"
        );
        assert!(text.ends_with("hi\n"));
        let e = run("prestart", &[hook("echo nope >&2; exit 3")], &state).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("nope") && e.contains("prestart hook #0"), "{e}");
        let mut slow = hook("sleep 10");
        slow.timeout = Some(1);
        let e = format!("{:#}", run("poststop", &[slow], &state).unwrap_err());
        assert!(e.contains("timed out"), "{e}");
    }
}
