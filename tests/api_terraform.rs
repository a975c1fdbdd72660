//! Terraform's call sequence for an ECS cluster, task definition and
//! service (tests/api/terraform.py: create, the provider's waiters and
//! reads, update, drain, delete, deregister, delete the cluster) replayed
//! with boto3 against `berth serve` with real busybox tasks, every answer
//! validated strictly against botocore's model (the Go SDK under Terraform
//! refuses a member of the wrong JSON type). Needs `make api-deps`.

mod api_world;

use api_world::Served;
use berth_tests::patience;

#[test]
fn terraform_sequence_runs_real_tasks_with_strictly_valid_answers() {
    let s = Served::new("apitf");
    // The script's waits scale as the harness's do.
    let scale = patience(1).as_secs().to_string();
    let out = s.python_ok(
        "terraform.py",
        &[
            "--endpoint",
            &s.endpoint,
            "--image",
            "busybox",
            "--patience",
            &scale,
        ],
    );
    assert!(
        out.contains("terraform sequence passed"),
        "terraform.py did not finish:\n{out}"
    );
    // Destroy left nothing running: the service's tasks are gone with it.
    s.world.assert_clean();
}
