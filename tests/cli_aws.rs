//! The CLI speaks aws (issue 14), through the real binary: --output
//! table|text|json as aws-cli v1 renders the same JSON (its own formatter
//! module, from the venv `make api-deps` makes), --query, shorthand and
//! --cli-input-json reaching the request, help on every flag, and `make
//! install` into a DESTDIR.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_tests::{assert_ok, parse_json, stderr, stdout, task_id, World};
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The venv's Python, with aws-cli v1 in it.
fn python() -> PathBuf {
    let venv = std::env::var_os("BERTH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".build/venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make api-deps` (or set BERTH_TEST_VENV)",
        python.display()
    );
    python
}

/// aws-cli's rendering of `response` (the JSON berth printed) for
/// `operation`, on a terminal 80 wide (as for a pipe), after `query`.
fn aws_renders(format: &str, operation: &str, response: &str, query: Option<&str>) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("scripts/aws_output_fixtures.py"))
        .args(["--render", format, operation, "80"]);
    if let Some(q) = query {
        cmd.arg(q);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the venv's python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(response.as_bytes())
        .expect("write the response");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "aws's formatter failed (is aws-cli in the venv? `make api-deps`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `args` printed by berth in each format, with and without `queries`,
/// against aws's rendering of berth's own JSON for the same call. The
/// JSON is read again after: a state that changed in between is tried
/// again.
fn prints_as_aws(w: &World, args: &[&str], operation: &str, queries: &[&str]) {
    let berth = |extra: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        let out = w.berth(&all);
        assert_ok(&out);
        stdout(&out)
    };
    let mut variants: Vec<(&str, Option<&str>)> = Vec::new();
    for format in ["json", "table", "text"] {
        variants.push((format, None));
        for q in queries {
            variants.push((format, Some(q)));
        }
    }
    for (format, query) in variants {
        let mut tries = 0;
        loop {
            let before = berth(&[]);
            let mut extra = vec!["--output", format];
            if let Some(q) = query {
                extra.extend(["--query", q]);
            }
            let got = berth(&extra);
            if berth(&[]) != before && tries < 5 {
                tries += 1;
                continue;
            }
            let want = aws_renders(format, operation, &before, query);
            assert_eq!(
                got, want,
                "{args:?} --output {format} --query {query:?}:\n--- berth\n{got}--- aws\n{want}"
            );
            break;
        }
    }
}

#[test]
fn describe_tasks_prints_as_aws_prints_it() {
    let w = World::new("cli-aws-tasks");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "quick",
        "networkMode": "none",
        "containerDefinitions": [
            { "name": "app", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", "exit 0"] },
            { "name": "side", "image": "busybox", "memory": 16, "essential": false,
              "command": ["true"] }
        ]
    }));
    let out = w.berth(&[
        "run-task",
        "--task-definition",
        "quick",
        "--tags",
        "key=team,value=web",
        "key=tier,value=edge",
    ]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&id, "STOPPED");
    let args = ["describe-tasks", "--tasks", id.as_str(), "ghost"];
    prints_as_aws(
        &w,
        &args,
        "DescribeTasks",
        &[
            "tasks[].[taskArn, lastStatus]",
            "tasks[0].containers[].{name: name, exit: exitCode}",
            "tasks[0].lastStatus",
        ],
    );
    // What the issue saw: a table of the tasks, not the word "failures".
    let mut all = args.to_vec();
    all.extend(["--output", "table"]);
    let table = stdout(&w.berth(&all));
    for part in [
        "DescribeTasks",
        "containers",
        "failures",
        "MISSING",
        "STOPPED",
        "tags",
    ] {
        assert!(table.contains(part), "no {part} in:\n{table}");
    }
}

#[test]
fn clusters_print_as_aws_prints_them() {
    let w = World::new("cli-aws-clusters");
    for (name, tag) in [
        ("lab", "key=team,value=web"),
        ("uni", "key=café,value=名前"),
    ] {
        assert_ok(&w.berth(&["create-cluster", "--cluster-name", name, "--tags", tag]));
    }
    prints_as_aws(&w, &["list-clusters"], "ListClusters", &["clusterArns[0]"]);
    prints_as_aws(
        &w,
        &["describe-clusters", "--clusters", "lab", "uni", "ghost"],
        "DescribeClusters",
        &[
            "clusters[].{n: clusterName, s: status, t: tags}",
            "length(clusters)",
        ],
    );
}

#[test]
fn a_bad_query_names_the_flag_and_changes_nothing() {
    let w = World::new("cli-aws-query");
    let out = w.berth(&[
        "create-cluster",
        "--cluster-name",
        "q1",
        "--query",
        "cluster.[",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--query \"cluster.[\""),
        "{}",
        stderr(&out)
    );
    let list = parse_json(&w.berth(&["list-clusters"]));
    assert!(
        !list.to_string().contains("cluster/q1"),
        "a bad --query ran the verb: {list}"
    );
    // An expression that fails on the answer names --query too.
    let out = w.berth(&["list-clusters", "--query", "abs(clusterArns)"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--query"), "{}", stderr(&out));
    let out = w.berth(&["image", "ls", "--query", "images"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--query: only the ECS verbs"),
        "{}",
        stderr(&out)
    );
    // Selected, then rendered.
    let out = w.berth(&[
        "list-clusters",
        "--query",
        "clusterArns[0]",
        "--output",
        "text",
    ]);
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        "arn:aws:ecs:local:000000000000:cluster/default\n"
    );
}

#[test]
fn shorthand_and_cli_input_json_reach_the_request() {
    let w = World::new("cli-aws-shorthand");
    let out = w.berth(&[
        "register-task-definition",
        "--family",
        "sh",
        "--container-definitions",
        "name=web,image=busybox,memory=64,essential=true,command=[sh,-c,'sleep 1; true']",
        "name=side,image=busybox,memory=32,essential=false,environment=[{name=MODE,value=demo}]",
    ]);
    assert_ok(&out);
    let td = &parse_json(&out)["taskDefinition"];
    let web = &td["containerDefinitions"][0];
    assert_eq!(web["memory"], 64, "{td}");
    assert_eq!(web["essential"], true, "{td}");
    assert_eq!(web["command"], json!(["sh", "-c", "sleep 1; true"]), "{td}");
    assert_eq!(
        td["containerDefinitions"][1]["environment"],
        json!([{"name": "MODE", "value": "demo"}])
    );
    // A value of the wrong type names the flag and the field.
    let out = w.berth(&[
        "register-task-definition",
        "--family",
        "bad",
        "--container-definitions",
        "name=web,image=busybox,memory=lots",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--container-definitions") && err.contains("memory"),
        "{err}"
    );
    let out = w.berth(&[
        "register-task-definition",
        "--family",
        "bad2",
        "--container-definitions",
        "name",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--container-definitions \"name\": expected '='"),
        "{}",
        stderr(&out)
    );
    // --cli-input-json on a verb that reads it by its flags.
    let out = w.berth(&[
        "create-cluster",
        "--cli-input-json",
        r#"{"clusterName": "cj", "tags": [{"key": "a", "value": "b c"}]}"#,
    ]);
    assert_ok(&out);
    let cluster = &parse_json(&out)["cluster"];
    assert_eq!(cluster["clusterName"], "cj");
    assert_eq!(cluster["tags"], json!([{"key": "a", "value": "b c"}]));
    // Quoted shorthand keeps what it quotes (a tag value may not hold a
    // comma: the shorthand parser's unit tests cover commas).
    let out = w.berth(&[
        "create-cluster",
        "--cluster-name",
        "q",
        "--tags",
        "key=a,value='b c=d'",
    ]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["cluster"]["tags"][0]["value"], "b c=d");
}

/// The ECS verbs `berth --help` lists.
fn verbs(w: &World) -> Vec<String> {
    let help = stdout(&w.berth(&["--help"]));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|v| {
            !["image", "system", "runtime", "help", "completion", "serve"].contains(&v.as_str())
        })
        .collect()
}

#[test]
fn every_verb_shows_help_for_every_flag() {
    let w = World::new("cli-aws-help");
    let verbs = verbs(&w);
    assert!(verbs.len() > 30, "{verbs:?}");
    for verb in &verbs {
        let out = w.berth(&[verb, "--help"]);
        assert_ok(&out);
        let help = stdout(&out);
        let lines: Vec<&str> = help.lines().collect();
        assert!(
            !lines[0].trim().is_empty(),
            "{verb}: no description:\n{help}"
        );
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if t.starts_with("--")
                || (t.starts_with('-') && t.len() > 1 && t.as_bytes()[1].is_ascii_alphanumeric())
            {
                let next = lines.get(i + 1).map_or("", |l| l.trim());
                assert!(!next.is_empty(), "{verb}: {t} has no help:\n{help}");
            }
        }
        if verb != "logs" {
            assert!(
                help.contains("--cli-input-json"),
                "{verb}: no --cli-input-json"
            );
        }
    }
}

#[test]
fn install_puts_berth_its_completions_and_man_pages_under_destdir() {
    let dest = tempfile::tempdir().expect("DESTDIR");
    let bin = berth_tests::berth_bin();
    for prefix in ["/usr/local", "/opt/berth"] {
        let out = Command::new("make")
            .arg("-C")
            .arg(repo())
            .arg("-s")
            .arg("install")
            .arg(format!("DESTDIR={}", dest.path().display()))
            .arg(format!("PREFIX={prefix}"))
            .arg(format!("INSTALL_BIN={}", bin.display()))
            .output()
            .expect("run make");
        assert_ok(&out);
        let root = dest.path().join(prefix.trim_start_matches('/'));
        let installed = root.join("bin/berth");
        let version = Command::new(&installed)
            .arg("--version")
            .output()
            .expect("run it");
        assert_ok(&version);
        assert!(
            stdout(&version).starts_with("berth "),
            "{}",
            stdout(&version)
        );
        let man = root.join("share/man/man1");
        let page = std::fs::read_to_string(man.join("berth.1")).expect("berth.1");
        assert!(page.contains(".TH berth 1"), "{page}");
        let run_task =
            std::fs::read_to_string(man.join("berth-run-task.1")).expect("berth-run-task.1");
        assert!(run_task.contains("placement\\-strategy"), "{run_task}");
        let zsh =
            std::fs::read_to_string(root.join("share/zsh/site-functions/_berth")).expect("zsh");
        assert!(zsh.starts_with("#compdef berth"), "{zsh}");
        let fish = std::fs::read_to_string(root.join("share/fish/vendor_completions.d/berth.fish"))
            .expect("fish");
        assert!(fish.contains("complete -c berth"), "{fish}");
    }
    // Bash completes berth's verbs and flags with the installed script.
    let bash = dest
        .path()
        .join("usr/share/bash-completion/completions/berth");
    let script = format!(
        "source {}; COMP_WORDS=(berth describe-ta); COMP_CWORD=1; _berth berth describe-ta berth; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(berth run-task --placement-s); COMP_CWORD=2; _berth berth --placement-s run-task; echo \"${{COMPREPLY[@]}}\"",
        bash.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash");
    assert_ok(&out);
    let words = stdout(&out);
    assert!(words.contains("describe-tasks"), "{words}");
    assert!(words.contains("--placement-strategy"), "{words}");
}
