//! Each emulated Argo rule, with small inline manifests.
#![allow(missing_docs)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argo_emulator::{EmulatorError, NodeKind, Phase};
use support::{emulator, workflow, yaml};

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

#[test]
fn retry_limit_counts_attempts() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path());
    let wf = workflow(
        "limit",
        r#"retryStrategy: {limit: "2"}
container: {command: [sh, -c, "echo attempt {{retries}}; exit 1"]}"#,
    );
    let run = emu.run(&wf)?;
    assert_eq!(run.phase, Phase::Failed);
    assert_eq!(run.message, "No more retries left");
    assert_eq!(run.attempts("main"), 3, "limit 2 is 3 attempts");
    let retry = run.node("limit").ok_or("retry node")?;
    assert_eq!((retry.kind, retry.phase), (NodeKind::Retry, Phase::Failed));
    let last = run.node("limit(2)").ok_or("third attempt")?;
    assert_eq!(last.log, "attempt 2\n");
    assert_eq!(last.message, "main: Error (exit code 1)");
    assert_eq!(last.exit_code, Some(1));
    assert_eq!(
        last.pod_name.as_deref(),
        Some(format!("limit-main-{}", fnv32a("limit(2)")).as_str())
    );

    // OnError does not retry a Failed node; the retry node takes the attempt's message.
    let wf = workflow(
        "on-error",
        "retryStrategy: {limit: 5, retryPolicy: OnError}\ncontainer: {command: [sh, -c, 'exit 3']}",
    );
    let run = emu.run(&wf)?;
    assert_eq!(
        (run.attempts("main"), run.message.as_str()),
        (1, "main: Error (exit code 3)")
    );
    Ok(())
}

fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[test]
fn exit_code_expressions_need_a_main_container() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path());
    let strategy = "retryStrategy: {limit: 3, expression: 'asInt(lastRetry.exitCode) == 75'}";
    // A containerSet without `main`: the node has no exit code, lastRetry.exitCode is "-1".
    let set = workflow(
        "set",
        &format!(
            "{strategy}\ncontainerSet:\n  containers:\n  - {{name: extract, command: [sh, -c, 'exit 75']}}"
        ),
    );
    let run = emu.run(&set)?;
    assert_eq!(run.attempts("main"), 1);
    assert_eq!(run.message, "retryStrategy.expression evaluated to false");
    assert_eq!(run.node("set(0)").ok_or("attempt")?.exit_code, None);
    assert_eq!(
        run.node("set(0)").ok_or("attempt")?.message,
        "extract: Error (exit code 75)"
    );

    // The same failure in a container named `main` fires the expression until the limit.
    for template in [
        format!("{strategy}\ncontainer: {{command: [sh, -c, 'exit 75']}}"),
        format!(
            "{strategy}\ncontainerSet:\n  containers:\n  - {{name: main, command: [sh, -c, 'exit 75']}}"
        ),
    ] {
        let run = emu.run(&workflow("main", &template))?;
        assert_eq!(run.attempts("main"), 4, "{template}");
        assert_eq!(run.message, "No more retries left");
        assert_eq!(run.node("main(3)").ok_or("attempt")?.exit_code, Some(75));
    }
    // What Outpost's templates do instead: match the message.
    let by_message = workflow(
        "msg",
        "retryStrategy: {limit: 1, expression: 'lastRetry.message matches \"exit code 75([^0-9]|$)\"'}\ncontainerSet:\n  containers:\n  - {name: extract, command: [sh, -c, 'exit 75']}",
    );
    assert_eq!(emu.run(&by_message)?.attempts("main"), 2);
    Ok(())
}

#[test]
fn a_failed_dependency_stops_its_dependents_with_64() -> Result {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("b-ran");
    let emu = emulator(dir.path());
    let wf = workflow(
        "deps",
        &format!(
            "containerSet:\n  containers:\n  - {{name: a, command: [sh, -c, 'echo a; exit 75']}}\n  - {{name: b, dependencies: [a], command: [sh, -c, 'touch {}']}}\n  - {{name: c, dependencies: [b], command: [sh, -c, 'true']}}",
            marker.display()
        ),
    );
    let run = emu.run(&wf)?;
    assert_eq!(run.phase, Phase::Failed);
    assert!(!marker.exists(), "b's command must not run");
    let pod = run.node("deps").ok_or("pod")?;
    assert_eq!((pod.kind, pod.exit_code), (NodeKind::Pod, None));
    assert_eq!(pod.message, "a: Error (exit code 75)");
    assert_eq!(
        pod.pod_name.as_deref(),
        Some("deps"),
        "the root node's pod is named after the workflow"
    );
    let b = run.node("b").ok_or("b")?;
    assert_eq!(
        (b.kind, b.phase, b.exit_code),
        (NodeKind::Container, Phase::Error, Some(64))
    );
    assert_eq!(
        b.message,
        "b: Error (exit code 64): dependency \"a\" exited with non-zero code: 75"
    );
    assert_eq!(b.log, "dependency \"a\" exited with non-zero code: 75\n");
    // The emissary of b writes a's code to its exit code file, which c reads.
    assert_eq!(
        run.node("c").ok_or("c")?.message,
        "c: Error (exit code 64): dependency \"b\" exited with non-zero code: 75"
    );
    let a = run.node("a").ok_or("a")?;
    assert_eq!(
        (a.phase, a.message.as_str(), a.log.as_str()),
        (Phase::Failed, "a: Error (exit code 75): ", "a\n")
    );
    Ok(())
}

#[test]
fn active_deadline_kills_the_running_pod() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path()).time_scale(100.0);
    let wf = workflow(
        "slow",
        "activeDeadlineSeconds: \"30\"\ncontainer: {command: [sh, -c, 'echo started; sleep 60 & wait']}",
    );
    let real = Instant::now();
    let run = emu.run(&wf)?;
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "killed, not waited for: {:?}",
        real.elapsed()
    );
    assert_eq!(run.phase, Phase::Failed);
    assert_eq!(
        run.message,
        "Pod was active on the node longer than the specified deadline"
    );
    let pod = run.node("slow").ok_or("pod")?;
    assert_eq!(pod.exit_code, Some(137));
    assert_eq!(pod.log, "started\n");
    assert!(
        (29.0..60.0).contains(&(pod.finished - pod.started)),
        "{} {}",
        pod.started,
        pod.finished
    );
    Ok(())
}

#[test]
fn a_missing_secret_keeps_the_pod_pending_until_a_deadline() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path()).time_scale(100.0);
    let manifest = |deadline: &str| {
        yaml(&format!(
            r#"
metadata: {{name: pending}}
spec:
  entrypoint: main
  onExit: report
  {deadline}
  templates:
  - name: main
    container:
      command: [sh, -c, 'cat /secrets/password']
      volumeMounts: [{{name: creds, mountPath: /secrets}}]
    volumes:
    - name: creds
      projected:
        sources: [{{secret: {{name: "outpost-source-{{{{workflow.name}}}}", items: [{{key: password, path: password}}]}}}}]
  - name: report
    container: {{command: [sh, -c, 'echo {{{{workflow.status}}}}']}}
"#
        ))
    };
    // No deadline can end it: the run stops Pending, naming the Secret.
    let run = emu.run(&manifest(""))?;
    assert_eq!(run.phase, Phase::Pending);
    assert_eq!(
        run.message,
        "MountVolume.SetUp failed for volume \"creds\" : secret \"outpost-source-pending\" not found"
    );
    assert_eq!(run.node("pending").ok_or("pod")?.phase, Phase::Pending);

    // The workflow's deadline fails it (and the exit handler still runs).
    let run = emu.run(&manifest("activeDeadlineSeconds: 60"))?;
    assert_eq!(run.phase, Phase::Failed);
    assert_eq!(run.message, "Step exceeded its deadline");
    let pod = run.node("pending").ok_or("pod")?;
    assert!(pod.finished >= 60.0, "{}", pod.finished);
    assert_eq!(
        run.node("pending.onExit").ok_or("exit handler")?.log,
        "Failed\n"
    );

    // A Secret that appears while the pod waits is mounted, as the kubelet retries.
    let emu = Arc::new(emu);
    let writer = {
        let emu = emu.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            emu.store()
                .put_secret("outpost-source-pending", "password", "s3cret");
        })
    };
    let run = emu.run(&manifest("activeDeadlineSeconds: 600"))?;
    writer.join().map_err(|_| "writer panicked")?;
    assert_eq!(run.phase, Phase::Succeeded, "{}", run.message);
    assert_eq!(run.node("pending").ok_or("pod")?.log, "s3cret");
    Ok(())
}

#[test]
fn pod_deadlines_count_the_time_spent_waiting_for_volumes() -> Result {
    // The kubelet counts activeDeadlineSeconds from when it acknowledged the pod, which is
    // before it mounts volumes; Argo turns `timeout` into the same pod field.
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path()).time_scale(100.0);
    for field in ["activeDeadlineSeconds: 20", "timeout: 20s"] {
        let wf = workflow(
            "waits",
            &format!(
                "{field}\ncontainer: {{command: [sh, -c, 'true'], volumeMounts: [{{name: s, mountPath: /s}}]}}\nvolumes: [{{name: s, secret: {{secretName: absent}}}}]"
            ),
        );
        let run = emu.run(&wf)?;
        assert_eq!(
            (run.phase, run.message.as_str()),
            (
                Phase::Failed,
                "Pod was active on the node longer than the specified deadline"
            ),
            "{field}"
        );
        let pod = run.node("waits").ok_or("pod")?;
        assert!(
            pod.finished >= 20.0 && pod.log.is_empty(),
            "{field}: {pod:?}"
        );
    }
    Ok(())
}

#[test]
fn retries_stop_at_the_workflow_deadline() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path()).time_scale(100.0);
    let mut wf = workflow(
        "late",
        "retryStrategy: {limit: 10, backoff: {duration: 20s}}\ncontainer: {command: [sh, -c, 'exit 1']}",
    );
    wf["spec"]["activeDeadlineSeconds"] = 50.into();
    let run = emu.run(&wf)?;
    assert_eq!(run.attempts("main"), 3, "at 0, 20 and 40 s");
    assert_eq!(run.phase, Phase::Failed);
    assert!(
        run.message.starts_with("retry exceeded workflow deadline "),
        "{}",
        run.message
    );
    Ok(())
}

#[test]
fn secret_and_config_map_volumes_have_kubernetes_files_and_modes() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path());
    emu.store().put_secret("token", "token", "t0k");
    emu.store().put_secret("token", "other", "unused");
    emu.store().put_config_map("settings", "a.conf", "x=1");
    let wf = yaml(
        r#"
metadata: {name: volumes}
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      command: [sh, -c]
      args: ["for f in /t/token /t/renamed /p/token /c/a.conf; do echo $f $(stat -c %a $f) $(cat $f); done; ls -A /o | wc -l"]
      volumeMounts:
      - {name: t, mountPath: /t}
      - {name: p, mountPath: /p}
      - {name: c, mountPath: /c}
      - {name: o, mountPath: /o}
    volumes:
    - name: t
      secret: {secretName: token, defaultMode: 288, items: [{key: token, path: token}, {key: other, path: renamed, mode: 256}]}
    - name: p
      projected:
        defaultMode: 288
        sources:
        - secret: {name: token, items: [{key: token, path: token}]}
        - secret: {name: absent, optional: true}
        - secret: {name: token, optional: true, items: [{key: nope, path: nope}]}
    - {name: c, configMap: {name: settings}}
    - name: o
      secret: {secretName: absent, optional: true}
"#,
    );
    let run = emu.run(&wf)?;
    assert_eq!(run.phase, Phase::Succeeded, "{}", run.message);
    // Workflow folder / pod folder (the root pod is named after the workflow) / volumes.
    let host = |v: &str| {
        dir.path()
            .join("volumes/volumes/volumes")
            .join(v)
            .display()
            .to_string()
    };
    let (t, p, c) = (host("t"), host("p"), host("c"));
    assert_eq!(
        run.node("volumes").ok_or("pod")?.log,
        format!(
            "{t}/token 440 t0k\n{t}/renamed 400 unused\n{p}/token 440 t0k\n{c}/a.conf 644 x=1\n0\n"
        )
    );

    // A key missing from a non-optional source keeps the pod from starting.
    let mut missing_key = wf.clone();
    missing_key["spec"]["templates"][0]["volumes"][0]["secret"]["items"][0]["key"] = "gone".into();
    let run = emu.run(&missing_key)?;
    assert_eq!(run.phase, Phase::Pending);
    assert_eq!(
        run.message,
        "MountVolume.SetUp failed for volume \"t\" : references non-existent secret key: gone"
    );
    Ok(())
}

#[test]
fn environment_mounts_and_tmpdir() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path()).env("EXTRA", "from-the-test");
    emu.store().put_secret("db", "password", "pw");
    let wf = yaml(
        r#"
metadata: {name: env}
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      command: [sh, -c, 'echo "$OUT|$PASSWORD|$HOSTS|$POD|$EXTRA|$HOME"; test "$TMPDIR" = /tmp && echo tmpdir; echo $(OUT) > /out/file']
      env:
      - {name: OUT, value: /out}
      - {name: PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
      - {name: HOSTS, value: "a,$(OUT),$(KUBERNETES_SERVICE_HOST)"}
      - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
      volumeMounts: [{name: out, mountPath: /out}, {name: tmp, mountPath: /tmp}]
    volumes: [{name: out, emptyDir: {}}, {name: tmp, emptyDir: {}}]
"#,
    );
    let run = emu.run(&wf)?;
    let out = dir.path().join("env/env/volumes/out");
    let log = &run.node("env").ok_or("pod")?.log;
    assert_eq!(
        log,
        &format!(
            "{o}|pw|a,{o},$(KUBERNETES_SERVICE_HOST)|env|from-the-test|\ntmpdir\n",
            o = out.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(out.join("file"))?,
        format!("{}\n", out.display())
    );
    Ok(())
}

#[test]
fn unknown_executables_exit_127() -> Result {
    let dir = tempfile::tempdir()?;
    let run = emulator(dir.path()).run(&workflow(
        "nobin",
        "container: {command: [outpost, extract]}",
    ))?;
    assert_eq!(run.phase, Phase::Failed);
    let pod = run.node("nobin").ok_or("pod")?;
    assert_eq!(pod.exit_code, Some(127));
    assert!(
        pod.message
            .starts_with("main: Error (exit code 127): executable not found"),
        "{}",
        pod.message
    );
    Ok(())
}

#[test]
fn unresolved_references_are_errors() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path());
    let wf = workflow(
        "unresolved",
        "container: {command: [sh, -c, 'echo {{ workflow.parameters.nope }}']}",
    );
    match emu.run(&wf) {
        Err(e @ EmulatorError::Unresolved(_)) => assert_eq!(
            e.to_string(),
            "failed to resolve {{ workflow.parameters.nope }}"
        ),
        other => panic!("expected an unresolved reference, got {other:?}"),
    }
    // `retries` exists only with a retryStrategy, `workflow.failures` only in the exit handler.
    for bad in ["{{retries}}", "{{workflow.failures}}"] {
        let wf = workflow(
            "unresolved",
            &format!("container: {{command: [sh, -c, 'echo {bad}']}}"),
        );
        assert!(
            matches!(emu.run(&wf), Err(EmulatorError::Unresolved(_))),
            "{bad}"
        );
    }
    Ok(())
}

fn template_with_parameters() -> serde_json::Value {
    yaml(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: outpost-demo}
spec:
  entrypoint: run
  arguments:
    parameters:
    - {name: connection}
    - {name: transfer-mode, value: direct-ingestion, enum: [direct-ingestion]}
    - {name: port, value: "5432"}
  templates:
  - name: run
    container: {command: [sh, -c, 'echo {{workflow.parameters.connection}} {{workflow.parameters.transfer-mode}} {{workflow.parameters.port}}']}
"#,
    )
}

#[test]
fn workflow_template_parameters_merge_and_validate() -> Result {
    let dir = tempfile::tempdir()?;
    let mut emu = emulator(dir.path());
    emu.install_template(template_with_parameters());
    let submit = |params: &str| {
        yaml(&format!(
            "metadata: {{generateName: outpost-demo-}}\nspec:\n  workflowTemplateRef: {{name: outpost-demo}}\n  arguments: {{parameters: [{params}]}}"
        ))
    };
    let run = emu.run(&submit(
        "{name: connection, value: pg}, {name: port, value: 6543}",
    ))?;
    assert_eq!(run.phase, Phase::Succeeded);
    assert!(
        run.name.starts_with("outpost-demo-") && run.name.len() == "outpost-demo-".len() + 5,
        "{}",
        run.name
    );
    assert_eq!(
        run.node(&run.name).ok_or("pod")?.log,
        "pg direct-ingestion 6543\n"
    );

    let err = emu
        .run(&submit("{name: port, value: 1}"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("spec.arguments.connection.value or spec.arguments.connection.valueFrom is required")
    );
    let err = emu
        .run(&submit(
            "{name: connection, value: pg}, {name: transfer-mode, value: bucket-relay}",
        ))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "spec.arguments.transfer-mode.value should be present in spec.arguments.transfer-mode.enum list"
        )
    );
    Ok(())
}

#[test]
fn long_names_are_refused() -> Result {
    let dir = tempfile::tempdir()?;
    let name = "x".repeat(64);
    let err = emulator(dir.path())
        .run(&workflow(&name, "container: {command: [sh, -c, 'true']}"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err,
        Some(format!(
            "workflow name \"{name}\" must not be more than 63 characters long (currently 64)"
        ))
    );
    Ok(())
}

#[test]
fn semaphores_are_held_while_running_and_freed_after() -> Result {
    let dir = tempfile::tempdir()?;
    let mut emu = emulator(dir.path());
    emu.store()
        .put_config_map("outpost-concurrency", "postgres", "1");
    emu.store()
        .put_config_map("outpost-concurrency", "workflows", "2");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_observer = seen.clone();
    emu.on_pod(move |pod| {
        seen_by_observer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((pod.pod_name.clone(), pod.phase))
    });
    let emu = Arc::new(emu);
    let wf = yaml(
        r#"
metadata: {name: sem}
spec:
  entrypoint: main
  synchronization: {semaphores: [{configMapKeyRef: {name: outpost-concurrency, key: workflows}}]}
  templates:
  - name: main
    synchronization: {semaphores: [{configMapKeyRef: {name: outpost-concurrency, key: postgres}}]}
    retryStrategy: {limit: 1}
    container: {command: [sh, -c, 'exit 1']}
"#,
    );
    // While it runs, the template's slot is taken: a second workflow is refused.
    let handle = {
        let emu = emu.clone();
        let mut slow = wf.clone();
        slow["metadata"]["name"] = "sem-slow".into();
        slow["spec"]["templates"][0]["container"]["command"] =
            serde_json::json!(["sh", "-c", "sleep 0.5; exit 1"]);
        std::thread::spawn(move || emu.run(&slow).map(|r| r.phase))
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(emu.semaphore_holders("outpost-concurrency", "postgres"), 1);
    assert_eq!(emu.semaphore_holders("outpost-concurrency", "workflows"), 1);
    let err = emu.run(&wf).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("semaphore default/ConfigMap/outpost-concurrency/postgres (limit 1) is full")
    );
    assert_eq!(handle.join().map_err(|_| "panicked")??, Phase::Failed);
    assert_eq!(
        emu.semaphore_holders("outpost-concurrency", "postgres"),
        0,
        "freed after the run"
    );
    assert_eq!(emu.semaphore_holders("outpost-concurrency", "workflows"), 0);
    let run = emu.run(&wf)?;
    assert_eq!(run.attempts("main"), 2);
    assert_eq!(emu.semaphore_holders("outpost-concurrency", "postgres"), 0);
    assert_eq!(
        seen.lock().map_err(|_| "poisoned")?.len(),
        4,
        "one event per pod attempt"
    );
    Ok(())
}

#[test]
fn exit_handler_sees_status_and_failures() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path());
    let manifest = |entry: &str, handler: &str| {
        yaml(&format!(
            r#"
metadata: {{name: exits}}
spec:
  entrypoint: main
  onExit: report
  templates:
  - name: main
    retryStrategy: {{limit: 1}}
    container: {{command: [sh, -c, '{entry}']}}
  - name: report
    container: {{command: [sh, -c, 'echo {{{{workflow.status}}}}; echo {{{{workflow.failures}}}}; {handler}']}}
"#
        ))
    };
    let run = emu.run(&manifest("echo no; exit 3", "true"))?;
    assert_eq!(
        (run.phase, run.message.as_str()),
        (Phase::Failed, "No more retries left")
    );
    let report = run.node("exits.onExit").ok_or("exit handler")?;
    assert!(report.on_exit);
    let (status, failures) = report.log.split_once('\n').ok_or("two lines")?;
    assert_eq!(status, "Failed");
    let failures: serde_json::Value = serde_json::from_str(failures.trim())?;
    let names: Vec<&str> = failures
        .as_array()
        .ok_or("a list")?
        .iter()
        .filter_map(|f| f["displayName"].as_str())
        .collect();
    assert_eq!(names, ["exits", "exits(0)", "exits(1)"]);
    let first = &failures[1];
    assert_eq!(first["message"], "main: Error (exit code 3)");
    assert_eq!(
        (first["templateName"].as_str(), first["phase"].as_str()),
        (Some("main"), Some("Failed"))
    );
    assert_eq!(
        first["podName"],
        format!("exits-main-{}", fnv32a("exits(0)"))
    );
    assert!(
        first["finishedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // Success, then a failing exit handler: the workflow fails with the handler's message.
    let run = emu.run(&manifest("true", "exit 4"))?;
    assert_eq!(
        run.node("exits.onExit").ok_or("exit handler")?.log,
        "Succeeded\n[]\n"
    );
    assert_eq!(
        (run.phase, run.message.as_str()),
        (Phase::Failed, "main: Error (exit code 4)")
    );
    Ok(())
}

#[test]
fn backoff_waits_grow_by_the_factor_up_to_the_cap() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path()).time_scale(100.0);
    let wf = workflow(
        "backoff",
        "retryStrategy: {limit: 3, backoff: {duration: 10s, factor: 2, cap: 30s}}\ncontainer: {command: [sh, -c, 'exit 1']}",
    );
    let run = emu.run(&wf)?;
    let pods: Vec<_> = run.pods().collect();
    assert_eq!(pods.len(), 4);
    let gaps: Vec<f64> = pods
        .windows(2)
        .map(|w| w[1].started - w[0].finished)
        .collect();
    for (gap, want) in gaps.iter().zip([10.0, 20.0, 30.0]) {
        assert!((want..want + 10.0).contains(gap), "gaps {gaps:?}");
    }
    Ok(())
}

#[test]
fn scripts_steps_and_results() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = emulator(dir.path());
    let wf = yaml(
        r#"
metadata: {name: steps}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: produce, template: produce}
    - - {name: consume, template: consume, arguments: {parameters: [{name: word, value: "{{steps.produce.outputs.result}}"}]}}
      - {name: never, template: consume, when: "{{steps.produce.status}} != Succeeded", arguments: {parameters: [{name: word, value: x}]}}
  - name: produce
    script: {command: [sh], source: "echo hello"}
  - name: consume
    inputs: {parameters: [{name: word}]}
    container: {command: [sh, -c, 'echo {{inputs.parameters.word}} from {{pod.name}}']}
"#,
    );
    let run = emu.run(&wf)?;
    assert_eq!(run.phase, Phase::Succeeded, "{}", run.message);
    let consume = run.node("consume").ok_or("consume")?;
    assert_eq!(consume.name, "steps[1].consume");
    assert_eq!(
        consume.log,
        format!("hello from steps-consume-{}\n", fnv32a("steps[1].consume"))
    );
    let never = run.node("never").ok_or("never")?;
    assert_eq!(
        (never.phase, never.message.as_str()),
        (
            Phase::Skipped,
            "when 'Succeeded != Succeeded' evaluated false"
        )
    );
    Ok(())
}

/// Argo's `templateReferencing: Strict` and `Secure` (review finding M6 relies on them): a
/// Workflow carrying its own templates, or overriding a pod field of the template it
/// references, ends in Error without running anything; a plain reference runs; without the
/// restriction, inline templates run.
#[test]
fn reference_mode_runs_only_workflows_that_reference_a_template() -> Result {
    let dir = tempfile::tempdir()?;
    let inline = workflow(
        "inline",
        "container: {command: [sh, -c, 'echo ran > /dev/stderr']}",
    );
    let reference = |extra: &str| {
        yaml(&format!(
            "metadata: {{name: by-reference}}\nspec:\n  workflowTemplateRef: {{name: outpost-demo}}\n  arguments: {{parameters: [{{name: connection, value: pg}}]}}\n  workflowMetadata: {{labels: {{a: b}}}}\n{extra}"
        ))
    };
    for mode in ["Strict", "Secure"] {
        let mut emu = emulator(dir.path()).template_referencing(mode);
        emu.install_template(template_with_parameters());
        let run = emu.run(&inline)?;
        assert_eq!(run.phase, Phase::Error, "{mode}");
        assert_eq!(
            run.message,
            "workflows must use workflowTemplateRef to be executed when the controller is in reference mode"
        );
        assert!(run.nodes.is_empty(), "nothing ran");

        let run = emu.run(&reference(""))?;
        assert_eq!(run.phase, Phase::Succeeded, "{mode}: {}", run.message);

        let run = emu.run(&reference(
            "  serviceAccountName: admin\n  podSpecPatch: '{}'\n  ttlStrategy: {secondsAfterSuccess: 60}\n",
        ))?;
        assert_eq!(run.phase, Phase::Error, "{mode}");
        assert_eq!(
            run.message,
            "fields [PodSpecPatch ServiceAccountName] are not permitted when using workflowTemplateRef with templateReferencing restriction"
        );
        assert!(run.nodes.is_empty(), "nothing ran");
    }
    // Any other value, or none, is not reference mode.
    for emu in [
        emulator(dir.path()),
        emulator(dir.path()).template_referencing("strict"),
    ] {
        assert_eq!(emu.run(&inline)?.phase, Phase::Succeeded);
    }
    Ok(())
}
