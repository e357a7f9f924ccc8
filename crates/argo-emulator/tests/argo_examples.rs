//! Argo's own example manifests (testdata/argo/examples-v4.1.2, unchanged) run to the end Argo
//! documents for them.
#![allow(missing_docs)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use argo_emulator::{Emulator, NodeKind, Phase};
use support::yaml;

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

fn example(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/argo/examples-v4.1.2")
        .join(name);
    yaml(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// retry-conditional.yaml: a python script exits 1 or 2 at random; the expression retries
/// while the exit code is above 1 (the `safe-to-retry` step printed `true`), at most 10 times.
#[test]
fn retry_conditional() -> Result {
    // Not skipped when python3 is missing: a skip would count as a pass. The test command
    // needs python3 anyway (scripts/services.sh drives the storage emulators with it).
    let python = support::python().ok_or("python3 is needed to run the example's `python`")?;
    let dir = tempfile::tempdir()?;
    // Real time: the expression bounds `asInt(lastRetry.duration) < 120`, and python's start
    // must not look like minutes.
    let emu = Emulator::new(dir.path()).with_binary("python", python);
    let run = emu.run(&example("retry-conditional.yaml"))?;
    assert!(run.name.starts_with("retry-script-"), "{}", run.name);
    assert_eq!(run.phase, Phase::Failed);

    let probe = run.node("safe-to-retry").ok_or("safe-to-retry step")?;
    assert_eq!(
        (probe.phase, probe.result.as_deref()),
        (Phase::Succeeded, Some("true"))
    );
    let retry = run.node("retry").ok_or("retry step")?;
    assert_eq!(retry.kind, NodeKind::Retry);
    let attempts: Vec<_> = run
        .pods()
        .filter(|n| n.template == "retry-script")
        .collect();
    assert!(
        (1..=11).contains(&attempts.len()),
        "{} attempts",
        attempts.len()
    );
    let (last, earlier) = attempts.split_last().ok_or("no attempt")?;
    assert!(
        earlier.iter().all(|a| a.exit_code == Some(2)),
        "only exit code 2 is retried"
    );
    assert_eq!(last.display_name, format!("retry({})", attempts.len() - 1));
    match last.exit_code {
        Some(1) => assert_eq!(retry.message, "retryStrategy.expression evaluated to false"),
        Some(2) => assert_eq!(
            (attempts.len(), retry.message.as_str()),
            (11, "No more retries left")
        ),
        other => panic!("unexpected exit code {other:?}"),
    }
    assert_eq!(retry.phase, Phase::Failed);
    // The steps node reports the failed child by id; the workflow takes the entry's message.
    assert_eq!(run.message, format!("child '{}' failed", retry.id));
    Ok(())
}

/// exit-handlers.yaml: the entrypoint fails; the exit handler's steps send the e-mail, skip
/// `celebrate` and run `cry`.
#[test]
fn exit_handlers() -> Result {
    let dir = tempfile::tempdir()?;
    let emu = Emulator::new(dir.path())
        .with_binary("sh", "/bin/sh")
        .time_scale(1000.0);
    let run = emu.run(&example("exit-handlers.yaml"))?;
    assert_eq!(run.phase, Phase::Failed);
    assert_eq!(run.message, "main: Error (exit code 1)");
    let entry = run.node(&run.name).ok_or("entry")?;
    assert_eq!(
        (entry.template.as_str(), entry.log.as_str()),
        ("intentional-fail", "intentional failure\n")
    );

    let handler = run
        .node(&format!("{}.onExit", run.name))
        .ok_or("exit handler")?;
    assert_eq!(
        (handler.kind, handler.phase),
        (NodeKind::Steps, Phase::Succeeded)
    );
    let notify = run.node("notify").ok_or("notify")?;
    let prefix = format!("send e-mail: {} Failed ", run.name);
    let (duration, failures) = notify
        .log
        .strip_prefix(&prefix)
        .and_then(|rest| rest.trim_end().split_once(". Failed steps "))
        .ok_or_else(|| format!("unexpected log {:?}", notify.log))?;
    assert!(
        duration.parse::<f64>().is_ok(),
        "{{workflow.duration}} is seconds: {duration}"
    );
    // {{workflow.failures}} is Go-quoted JSON: the shell's double quotes give back the JSON.
    let failures: serde_json::Value = serde_json::from_str(failures)?;
    assert_eq!(failures[0]["displayName"], run.name.as_str());
    assert_eq!(failures[0]["templateName"], "intentional-fail");
    assert_eq!(failures[0]["message"], "main: Error (exit code 1)");
    assert_eq!(failures[0]["podName"], run.name.as_str());
    assert_eq!(failures.as_array().map(Vec::len), Some(1));

    let celebrate = run.node("celebrate").ok_or("celebrate")?;
    assert_eq!(
        (celebrate.phase, celebrate.message.as_str()),
        (Phase::Skipped, "when 'Failed == Succeeded' evaluated false")
    );
    let cry = run.node("cry").ok_or("cry")?;
    assert_eq!(
        (cry.phase, cry.log.as_str()),
        (Phase::Succeeded, "boohoo!\n")
    );
    assert!(run.nodes.iter().filter(|n| n.on_exit).count() >= 4);
    Ok(())
}

/// container-set-template_sequence-workflow.yaml: a → b → c in one pod, no `main`.
#[test]
fn container_set_sequence() -> Result {
    let dir = tempfile::tempdir()?;
    // The containers have no command: they run the image's entrypoint. argosay without
    // arguments prints "hello argo"; a two-line script stands in for the image.
    let argosay = dir.path().join("argosay");
    std::fs::write(&argosay, "#!/bin/sh\necho hello argo\n")?;
    std::fs::set_permissions(&argosay, std::fs::Permissions::from_mode(0o755))?;
    let emu = Emulator::new(&dir.path().join("work"))
        .with_binary("argoproj/argosay:v2", &argosay)
        .time_scale(1000.0);
    let run = emu.run(&example("container-set-template_sequence-workflow.yaml"))?;
    assert!(run.name.starts_with("sequence-"), "{}", run.name);
    assert_eq!(run.phase, Phase::Succeeded, "{}", run.message);
    let pod = run.node(&run.name).ok_or("pod")?;
    assert_eq!(
        (pod.kind, pod.exit_code),
        (NodeKind::Pod, None),
        "no container is named main"
    );
    let containers: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|c| run.node(c))
        .collect::<Option<_>>()
        .ok_or("containers")?;
    for c in &containers {
        assert_eq!(
            (c.kind, c.phase, c.log.as_str()),
            (NodeKind::Container, Phase::Succeeded, "hello argo\n")
        );
        assert_eq!(c.name, format!("{}.{}", run.name, c.display_name));
    }
    assert!(
        containers.windows(2).all(|w| w[0].finished <= w[1].started),
        "a, then b, then c"
    );
    Ok(())
}
