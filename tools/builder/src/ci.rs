//! Scale-out on engines people already run: the matrix split into N shards
//! (see [`crate::plan::Shard`]) as a GitHub Actions `strategy.matrix`, a
//! GitLab `parallel:matrix`, or a Kubernetes Indexed Job whose pod i builds
//! shard i+1. Each shard job runs `kmodfarm build --shard I/N`; `kmodfarm
//! merge` then joins their outputs. Pure: text out.

use kmodfarm_model::record::MatrixEntry;

use crate::plan::Shard;

/// The shards and the kernels each builds.
pub fn shards(entries: &[MatrixEntry], count: usize) -> Vec<(Shard, Vec<String>)> {
    (1..=count)
        .map(|index| {
            let shard = Shard { index, count };
            (
                shard,
                shard.select(entries).iter().map(MatrixEntry::key).collect(),
            )
        })
        .collect()
}

/// `{"include": [{"shard": "1/3", "kernels": "…"}, …]}` for
/// `strategy.matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}`.
pub fn github(entries: &[MatrixEntry], count: usize) -> String {
    let include: Vec<serde_json::Value> = shards(entries, count)
        .into_iter()
        .map(|(shard, kernels)| {
            serde_json::json!({
                "shard": shard.to_string(),
                "name": format!("shard-{}-of-{}", shard.index, shard.count),
                "kernels": kernels.join(" "),
            })
        })
        .collect();
    serde_json::json!({ "include": include }).to_string()
}

/// A `parallel:matrix` block to put under a GitLab job; each job gets `$SHARD`.
pub fn gitlab(count: usize) -> String {
    let values: Vec<String> = (1..=count).map(|i| format!("\"{i}/{count}\"")).collect();
    format!(
        "parallel:\n  matrix:\n    - SHARD: [{}]\n",
        values.join(", ")
    )
}

/// What the Kubernetes Job runs.
#[derive(Debug, Clone)]
pub struct K8sJob {
    pub name: String,
    /// An image with kmodfarm, bubblewrap and mmdebstrap.
    pub image: String,
    /// A PersistentVolumeClaim holding the module source (with its
    /// kmodfarm.toml and matrix.json at its top) and receiving shard outputs.
    pub claim: String,
}

/// A Kubernetes Indexed Job: `count` pods, pod i builds shard i+1 into
/// `/work/out/shard-<i+1>`; `kmodfarm merge /work/out/shard-* --out …` after.
pub fn k8s(job: &K8sJob, count: usize) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  completionMode: Indexed
  completions: {count}
  parallelism: {count}
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: build
          image: {image}
          # bwrap mounts an overlay per build: the pod needs privileges.
          securityContext:
            privileged: true
          workingDir: /work
          command:
            - sh
            - -c
            - >-
              kmodfarm build --matrix matrix.json --runtime bwrap
              --shard $((JOB_COMPLETION_INDEX+1))/{count}
              --out out/shard-$((JOB_COMPLETION_INDEX+1))
              --junit out/shard-$((JOB_COMPLETION_INDEX+1)).junit.xml
          volumeMounts:
            - name: work
              mountPath: /work
      volumes:
        - name: work
          persistentVolumeClaim:
            claimName: {claim}
"#,
        name = job.name,
        image = job.image,
        claim = job.claim,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmodfarm_model::DistroSet;

    fn entries() -> Vec<MatrixEntry> {
        let set = DistroSet::builtin();
        let kernels: Vec<String> = [
            "debian-12:6.1.0-41-amd64",
            "debian-12:6.12.57+deb12-amd64",
            "debian-13:6.12.57+deb13-amd64",
            "debian-12:6.1.0-40-amd64",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        crate::plan::entries_from_kernels(&set, None, &kernels).unwrap()
    }

    #[test]
    fn github_matrix_lists_every_shard_with_its_kernels() {
        let json: serde_json::Value = serde_json::from_str(&github(&entries(), 3)).unwrap();
        insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());
    }

    #[test]
    fn gitlab_matrix_gives_each_job_its_shard() {
        insta::assert_snapshot!(gitlab(3));
    }

    #[test]
    fn the_k8s_job_is_indexed_and_each_pod_builds_its_shard() {
        let job = K8sJob {
            name: "kmodfarm-kmfdemo".into(),
            image: "registry.invalid/kmodfarm:1".into(),
            claim: "kmodfarm-work".into(),
        };
        insta::assert_snapshot!(k8s(&job, 3));
    }
}
