//! The README's walkthrough, run as written: the ```bash block under "## Walkthrough", with
//! bash (errexit and pipefail on) against a fresh server; it must succeed and show each
//! refusal it promises as `refused CODE: …`, never `null`.

use crate::helpers::spawn_app;

/// The first ```bash block after the "## Walkthrough" heading of README.md.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("\n## Walkthrough").expect("a Walkthrough section")..];
    let block = &section[section.find("```bash\n").expect("a bash block in the walkthrough") + "```bash\n".len()..];
    block[..block.find("\n```").expect("the block ends")].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_walkthrough_runs_and_shows_its_refusals() {
    for tool in ["bash", "curl", "jq"] {
        let found = std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success();
        assert!(found, "{tool} is needed (.ci/run installs it)");
    }
    let app = spawn_app().await;
    let script = walkthrough();
    let out = tokio::process::Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script])
        .env("ROSTER_URL", &app.address)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the walkthrough failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    let refusals: Vec<&str> = stdout.lines().filter(|l| l.starts_with("refused ")).map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(refusals, ["refused INVITATION_PENDING", "refused LAST_ADMIN", "refused FORBIDDEN"], "{stdout}");
    assert!(!stdout.lines().any(|l| l.trim() == "null"), "{stdout}");
    // The steps that succeed did: Grace joined and became a Developer.
    assert!(stdout.contains("\"viewerRole\": \"SECURITY_ENGINEER\""), "{stdout}");
    assert!(stdout.contains("\"role\": \"DEVELOPER\""), "{stdout}");
    assert!(stdout.contains("https://roster.example.test/invite/"), "{stdout}");
}
