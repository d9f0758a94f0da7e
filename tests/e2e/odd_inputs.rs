//! Odd inputs: what is not a regular file, dot segments in paths, a secret through a filter,
//! `for_each` over a string, numeric settings out of range, a token echoed by the server.

use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use wts_playbook::sandbox::SandboxConfig;

use crate::support::{Env, Hostile, Reply};

use super::close_playbook;

// 5. What is not a regular file is refused at once.

#[cfg(unix)]
#[test]
fn a_fifo_or_a_device_is_refused_not_read() {
    let env = Env::new(SandboxConfig::default());
    let fifo = env.dir.path().join("ids.csv");
    assert!(StdCommand::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let pb = env.write("close.yaml", &close_playbook(""));
    let started = Instant::now();
    let run = env.run(&pb, Some("pn_x"), &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(run.stderr.contains("named pipe (FIFO)"), "{}", run.stderr);
    let out = assert_cmd::Command::cargo_bin("wts-playbook")
        .unwrap()
        .args(["validate", "/dev/zero"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("character device"));
    let out = assert_cmd::Command::cargo_bin("wts-playbook")
        .unwrap()
        .current_dir(env.dir.path())
        .args(["validate", "ids.csv"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(env.journal().is_empty(), "nothing sent");
}

// ---------------------------------------------------------------------------------------------
// 8. `.` and `..` as a path parameter, or in the `http` action's path, are refused.

#[test]
fn dot_segments_in_a_path_are_refused_naming_the_row() {
    let env = Env::new(SandboxConfig::default());
    env.write("phones.csv", "phone\n+5511999990000\n..\n.\n");
    let pb = env.write(
        "lookup.yaml",
        r#"version: 1
name: lookup
inputs:
  phones: { csv: phones.csv }
steps:
  - id: look
    action: contact.get_by_phone
    for_each: inputs.phones
    with:
      phone_number: "{{ row.phone }}"
  - id: raw
    action: http
    with:
      method: GET
      path: "/core/v1/contact/%2e%2e/x"
"#,
    );
    let run = env.run(&pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr.contains("row 2 (line 3") && run.stderr.contains("`..` would change the route"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("row 3 (line 4"), "{}", run.stderr);
    assert!(run.stderr.contains("dot segment") || run.stderr.contains("`.` or `..` segment"));
    assert!(
        env.journal().iter().all(|e| e.path == "/core/v1/tag"
            || e.method != "GET"
            || !e.path.starts_with("/core/v1/contact")),
        "nothing sent"
    );
    assert!(env
        .journal()
        .iter()
        .all(|e| !e.path.starts_with("/core/v1/contact")));
}

// ---------------------------------------------------------------------------------------------
// 9. A secret through a filter is redacted as a whole value.

#[test]
fn a_secret_through_a_filter_is_redacted_as_a_whole() {
    let env = Env::new(SandboxConfig::default());
    let secret = "sk_live_abcdefghijkl";
    let pb = env.write(
        "leak.yaml",
        &format!(
            r#"version: 1
name: leak
vars:
  api_key: {secret}
  derived: "key={{{{ vars.api_key | reverse }}}}"
settings: {{ secrets: [api_key] }}
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: "{{{{ vars.api_key | upper }}}} {{{{ vars.api_key[:9] }}}} {{{{ vars.api_key | urlencode }}}} {{{{ vars.api_key | tojson }}}}"
  - id: again
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: "{{{{ vars.derived }}}}"
"#
        ),
    );
    for extra in [&["--dry-run"][..], &[][..]] {
        let run = env.run(&pb, Some("pn_x"), extra);
        assert_eq!(run.code, 0, "{}", run.context());
        let all = format!(
            "{}{}{}",
            run.stdout,
            run.stderr,
            run.report_text.as_deref().unwrap_or_default()
        );
        let upper = secret.to_uppercase();
        let reversed: String = secret.chars().rev().collect();
        for leak in [secret, upper.as_str(), &secret[..9], reversed.as_str()] {
            assert!(!all.contains(leak), "{leak} leaked: {all}");
        }
        assert!(run.report_text.unwrap().contains("[redacted]"));
    }
    // The real values reached the server.
    let sent: Vec<String> = env
        .journal()
        .iter()
        .filter(|e| e.method == "POST")
        .filter_map(|e| e.body["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        sent.iter()
            .any(|t| t.starts_with("SK_LIVE_ABCDEFGHIJKL sk_live_a")),
        "{sent:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. `for_each` over a string is an error; 12. every numeric setting has its range.

#[test]
fn for_each_over_a_string_is_an_error_naming_the_step() {
    let env = Env::new(SandboxConfig::default());
    let pb = env.write(
        "chars.yaml",
        r#"version: 1
name: chars
vars:
  names: hello
steps:
  - id: tell
    action: session.send_text
    for_each: vars.names
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: "{{ item }}"
"#,
    );
    let run = env.run(&pb, Some("pn_x"), &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr
            .contains("step `tell`: for_each `vars.names` must give a list, got a string `hello`"),
        "{}",
        run.stderr
    );
    assert!(
        env.journal().iter().all(|e| e.method == "GET"),
        "nothing sent"
    );
}

#[test]
fn numeric_settings_and_parameters_out_of_range_are_refused_with_the_range() {
    let env = Env::new(SandboxConfig::default());
    let pb = env.write(
        "ranges.yaml",
        r"version: 1
name: ranges
settings:
  timeout: 0s
  max_failures: -1
  concurrency: 5000
  retry: { attempts: 1000, backoff: 999999999999999s }
  max_retry_wait: 2d
  max_response_size: 10
  unreachable_after: 0
  max_pages: 0
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: hi
",
    );
    let run = env.run(&pb, Some("pn_x"), &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.context());
    for expected in [
        "timeout 0s is out of range: it must be between 10ms and 1h",
        "max_failures -1 is out of range",
        "concurrency: 5000 is out of range: it must be between 1 and 1024",
        "attempts: 1000 is out of range: it must be between 1 and 100",
        "backoff 999999999999999s is out of range: it must be between 0s and 10m",
        "max_retry_wait 48h is out of range",
        "10 is out of range: it must be between 1024 and 1073741824",
        "unreachable_after: 0 is out of range",
        "max_pages: 0 is out of range",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    // A NaN would silently become null (an omitted parameter).
    let pb = env.write(
        "nan.yaml",
        r"version: 1
name: nan
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: .nan
      delay: .inf
",
    );
    let run = env.run(&pb, Some("pn_x"), &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.context());
    assert!(
        run.stderr.contains("is not a usable number") && run.stderr.contains("nan.yaml:8:"),
        "{}",
        run.stderr
    );
    assert!(env.journal().is_empty());
}

/// A server that echoes the bearer token in an HTML error page: the token never reaches the
/// report or the output, not even in part where the quoted first bytes cut it.
#[test]
fn a_token_echoed_by_the_server_is_redacted_even_where_the_quote_cuts_it() {
    const TOKEN: &str = "pn-echo-SECRET-77880011";
    let env = Env::new(SandboxConfig::default());
    let server = Hostile::start(&env, |_, _| {
        // The token starts near the end of the quoted first bytes.
        let pad = "x".repeat(60);
        Reply::Full {
            status: 200,
            headers: vec![("content-type", "text/html".into())],
            body: format!("<html>{pad} your header was Bearer {TOKEN} </html>").into_bytes(),
        }
    });
    let pb = env.write(
        "send.yaml",
        r"version: 1
name: hostile-echo
settings: { retry: { attempts: 2, backoff: 10ms } }
steps:
  - id: tell
    action: session.send_text
    with:
      session_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
      text: hello
",
    );
    let run = env.run_at(&server.url(), &pb, Some(TOKEN), &[]);
    let all = format!(
        "{}{}{}",
        run.stdout,
        run.stderr,
        run.report_text.as_deref().unwrap_or_default()
    );
    assert!(
        !all.contains(&TOKEN[..10]),
        "the token leaked, maybe in part:\n{all}"
    );
    assert!(
        all.contains("[redacted]") || !all.contains("Bearer"),
        "{all}"
    );
}
