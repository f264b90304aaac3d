//! Erasure as a durable job.
//!
//! `DELETE /v1/customers/{id}` records the request in
//! `<data_dir>/erasures/<job>.json` (written atomically and fsynced) and
//! answers `202 Accepted` with the job's URL; no client timeout can leave an
//! erasure half done. One worker runs the jobs in the order they came,
//! resumes at start every job a crash or stop interrupted (each step of an
//! erasure is safe to repeat), retries a failing one with backoff, and
//! keeps the receipt. The customer id is in the job file only until the
//! erasure is done; afterwards the job holds the keyed hash and the receipt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::pipeline::ErasureReceipt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use ingest::Ingestor;
use services::audit::AuditLog;
use services::audit::{Actor, Entry};

/// Attempts before a job is given up (with backoff: about ten minutes).
const MAX_ATTEMPTS: u32 = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

/// One erasure request and what became of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub tenant: String,
    /// Needed to find the customer's rows; removed once the job is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer_id: Option<String>,
    pub customer_hash: String,
    pub requested_at: String,
    pub requested_by: Actor,
    pub state: JobState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ErasureReceipt>,
}

impl Job {
    /// The job as its status URL shows it: never the customer id.
    pub fn public(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("customer_id");
            o.insert("url".into(), json!(format!("/v1/erasures/{}", self.id)));
        }
        v
    }
}

/// The jobs of one data directory.
#[derive(Debug)]
pub struct ErasureJobs {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Job>>,
    queue: tokio::sync::mpsc::UnboundedSender<String>,
    receiver: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ErasureJobs {
    /// Loads every job recorded in `<data_dir>/erasures/`.
    pub fn open(data_dir: &Path) -> std::io::Result<ErasureJobs> {
        let dir = data_dir.join("erasures");
        std::fs::create_dir_all(&dir)?;
        // A job file being replaced when the process died may be left
        // beside it as a temp file still naming the customer.
        let removed = services::fsutil::remove_leftover_temps(&dir)?;
        if removed > 0 {
            tracing::info!(removed, "removed erasure job files a crash left half-written");
        }
        let mut jobs = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path).map(|b| serde_json::from_slice::<Job>(&b)) {
                Ok(Ok(job)) => {
                    jobs.insert(job.id.clone(), job);
                }
                Ok(Err(e)) => tracing::error!(path = %path.display(), error = %e, "unreadable erasure job"),
                Err(e) => tracing::error!(path = %path.display(), error = %e, "unreadable erasure job"),
            }
        }
        let (queue, receiver) = tokio::sync::mpsc::unbounded_channel();
        Ok(ErasureJobs {
            dir,
            jobs: Mutex::new(jobs),
            queue,
            receiver: Mutex::new(Some(receiver)),
        })
    }

    fn save(&self, job: &Job) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(job).map_err(std::io::Error::other)?;
        services::fsutil::write_atomic(&self.dir.join(format!("{}.json", job.id)), &bytes)?;
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.id.clone(), job.clone());
        Ok(())
    }

    /// Records a request durably and queues it.
    pub fn submit(&self, tenant: &str, customer_id: &str, customer_hash: String, by: Actor) -> std::io::Result<Job> {
        let job = Job {
            id: format!("ej_{:032x}", rand::random::<u128>()),
            tenant: tenant.to_string(),
            customer_id: Some(customer_id.to_string()),
            customer_hash,
            requested_at: now(),
            requested_by: by,
            state: JobState::Queued,
            attempts: 0,
            last_error: None,
            finished_at: None,
            receipt: None,
        };
        self.save(&job)?;
        let _ = self.queue.send(job.id.clone());
        Ok(job)
    }

    /// A job of `tenant` (`None` for a platform-wide caller: any tenant).
    pub fn get(&self, id: &str, tenant: Option<&str>) -> Option<Job> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(id).filter(|j| tenant.is_none_or(|t| t == j.tenant)).cloned()
    }

    /// Starts the worker: first the jobs a previous run left unfinished,
    /// oldest first, then each new one as it comes.
    pub fn start(jobs: Arc<ErasureJobs>, services: &services::Services) {
        let Some(mut rx) = jobs.receiver.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let worker = Worker {
            jobs,
            ingestor: services.ingestor.clone(),
            audit_log: services.audit.clone(),
            warehouse: services.warehouse.clone(),
            data_dir: services.data_dir.clone(),
        };
        let mut unfinished: Vec<Job> = {
            let jobs = worker.jobs.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.values()
                .filter(|j| matches!(j.state, JobState::Queued | JobState::Running))
                .cloned()
                .collect()
        };
        unfinished.sort_by(|a, b| a.requested_at.cmp(&b.requested_at));
        tokio::spawn(async move {
            for job in unfinished {
                tracing::info!(job = %job.id, "resuming an interrupted erasure");
                run(&worker, job.id).await;
            }
            while let Some(id) = rx.recv().await {
                run(&worker, id).await;
            }
        });
    }
}

/// What the worker needs.
struct Worker {
    jobs: Arc<ErasureJobs>,
    ingestor: Arc<Ingestor>,
    audit_log: AuditLog,
    /// The tenants' facts, which must forget the customer too.
    warehouse: warehouse::Warehouse,
    data_dir: PathBuf,
}

/// Runs one job to its end (done, or failed after every attempt).
async fn run(state: &Worker, id: String) {
    let jobs = &state.jobs;
    loop {
        let Some(mut job) = jobs.get(&id, None) else { return };
        let Some(customer_id) = job.customer_id.clone() else {
            return;
        };
        if job.state == JobState::Done || job.state == JobState::Failed {
            return;
        }
        job.state = JobState::Running;
        job.attempts += 1;
        if let Err(e) = jobs.save(&job) {
            tracing::error!(job = %id, error = %e, "cannot record the erasure job");
        }
        let erased = match state.ingestor.erase_customer(&job.tenant, &customer_id).await {
            Ok(receipt) => forget_in_facts(state, &job.tenant).await.map(|()| receipt),
            Err(e) => Err(e.to_string()),
        };
        match erased {
            Ok(receipt) => {
                job.state = JobState::Done;
                job.customer_id = None;
                job.last_error = None;
                job.finished_at = Some(now());
                let detail = json!({ "job": job.id, "receipt": receipt });
                job.receipt = Some(receipt);
                if let Err(e) = jobs.save(&job) {
                    tracing::error!(job = %id, error = %e, "cannot record the finished erasure job");
                }
                audit(state, &job, "customer.erase", detail).await;
                return;
            }
            Err(e) => {
                tracing::error!(job = %id, attempt = job.attempts, error = %e, "customer erasure failed");
                job.last_error = Some(e.to_string());
                let give_up = job.attempts >= MAX_ATTEMPTS;
                if give_up {
                    job.state = JobState::Failed;
                    job.finished_at = Some(now());
                }
                if let Err(e) = jobs.save(&job) {
                    tracing::error!(job = %id, error = %e, "cannot record the erasure job");
                }
                if give_up {
                    let detail = json!({ "job": job.id, "customer_hash": job.customer_hash, "error": e.to_string() });
                    audit(state, &job, "customer.erase_failed", detail).await;
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1u64 << job.attempts.min(6))).await;
            }
        }
    }
}

/// The tenant's facts recomputed without the erased events, saved, and
/// every older version of the fact tables deleted.
async fn forget_in_facts(state: &Worker, tenant: &str) -> Result<(), String> {
    let Some(tenant) = services::tenant::TenantId::parse(tenant) else {
        return Ok(());
    };
    let (dir, t) = (state.data_dir.clone(), tenant.clone());
    let settings = tokio::task::spawn_blocking(move || services::settings::load(&dir, &t))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    services::kpis::fast::forget_erased(&state.warehouse, &tenant, &settings)
        .await
        .map_err(|e| format!("the facts of tenant {tenant}: {e}"))
}

async fn audit(state: &Worker, job: &Job, action: &str, detail: serde_json::Value) {
    let entry = Entry {
        tenant: job.tenant.clone(),
        actor: job.requested_by.clone(),
        action: action.into(),
        target: "/v1/customers".into(),
        detail,
        source: None,
    };
    state.audit_log.record(entry).await;
}
