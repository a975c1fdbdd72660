//! Load balancers in the store: `create-load-balancer`,
//! `describe-load-balancers`, `delete-load-balancer`, and what each
//! listener should send to, read from the services attached to it. The
//! rules are `load_balancing`'s; the kernel side (`berth_net::lb`) is
//! `lb_sync`'s, called here once a record is written or deleted.

use serde_json::{json, Value};

use crate::ecs::{decode, encode, now, Ecs};
use crate::error::{EcsError, EcsResult};
use crate::lb_sync;
use crate::load_balancing::{self, check_lb_name, parse_listen};
use crate::model::{
    LoadBalancer, Service, ServiceLoadBalancer, ServiceStatus, Task, TaskDefinition,
};
use crate::store::{keys, Expect, Op, StoreError};

/// `create-load-balancer`'s parameters.
#[derive(Clone, Debug, Default)]
pub struct CreateLoadBalancer {
    pub name: String,
    /// `[ADDR:]PORT`.
    pub listen: String,
    pub protocol: Option<String>,
    pub deregistration_delay_seconds: Option<u32>,
}

impl Ecs {
    pub fn create_load_balancer(&self, req: &CreateLoadBalancer) -> EcsResult<Value> {
        check_lb_name(&req.name)?;
        let (address, port) = parse_listen(&req.listen)?;
        let protocol = load_balancing::protocol(req.protocol.as_deref())?;
        let deregistration_delay_seconds =
            load_balancing::deregistration_delay(req.deregistration_delay_seconds)?;
        let lb = LoadBalancer {
            load_balancer_name: req.name.clone(),
            load_balancer_arn: self.partition().arn(&format!("loadbalancer/{}", req.name)),
            protocol: protocol.clone(),
            address: address.map(|a| a.to_string()),
            port,
            deregistration_delay_seconds,
            created_at: now(),
            host: self.host.id.clone(),
        };
        let port_key = keys::port(&self.host.id, &protocol, port);
        // The name and the host port in one commit: neither is taken twice.
        let ops = [
            Op::Put {
                key: keys::load_balancer(&lb.load_balancer_name),
                value: encode(&lb)?,
                expect: Expect::Absent,
            },
            Op::Put {
                key: port_key.clone(),
                value: keys::load_balancer_holder(&lb.load_balancer_name),
                expect: Expect::Absent,
            },
        ];
        match self.store.commit(&ops) {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                if self
                    .store
                    .get(&keys::load_balancer(&lb.load_balancer_name))?
                    .is_some()
                {
                    return Err(EcsError::invalid(format!(
                        "loadBalancerName: {:?} already exists",
                        lb.load_balancer_name
                    )));
                }
                let holder = self
                    .store
                    .get(&port_key)?
                    .map(|r| String::from_utf8_lossy(&r.value).to_string())
                    .unwrap_or_default();
                return Err(EcsError::invalid(format!(
                    "listen: port {port}/{protocol} is taken on this host (by {holder})"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        // The listener exists from now on, with no backend yet.
        if let Err(e) = lb_sync::open(&lb) {
            let _ = self.forget_load_balancer(&lb);
            return Err(e);
        }
        Ok(json!({ "loadBalancer": lb }))
    }

    pub fn load_balancer(&self, name: &str) -> EcsResult<LoadBalancer> {
        // A name that cannot exist is refused before it becomes a key.
        check_lb_name(name)?;
        match self.store.get(&keys::load_balancer(name))? {
            Some(rec) => decode(&rec.value),
            None => Err(EcsError::invalid(format!(
                "loadBalancerName: load balancer {name:?} not found"
            ))),
        }
    }

    /// The named load balancers (all when `names` is empty), each with the
    /// tasks it sends to now.
    pub fn describe_load_balancers(&self, names: &[String]) -> EcsResult<Value> {
        let lbs: Vec<LoadBalancer> = if names.is_empty() {
            self.store
                .list(keys::LOAD_BALANCERS)?
                .into_iter()
                .map(|(_, rec)| decode(&rec.value))
                .collect::<EcsResult<_>>()?
        } else {
            names
                .iter()
                .map(|n| self.load_balancer(n))
                .collect::<EcsResult<_>>()?
        };
        let mut out = Vec::new();
        for lb in lbs {
            let targets: Vec<Value> = self
                .targets(&lb.load_balancer_name)?
                .into_iter()
                .map(|(service, task, backend)| {
                    json!({
                        "serviceArn": service.service_arn,
                        "taskArn": task.task_arn,
                        "address": backend.address.to_string(),
                        "port": backend.port,
                    })
                })
                .collect();
            let mut v = serde_json::to_value(&lb)?;
            v["targets"] = targets.into();
            out.push(v);
        }
        Ok(json!({ "loadBalancers": out }))
    }

    /// Delete a load balancer no active service uses (a deleted one's tasks
    /// are on their way out).
    pub fn delete_load_balancer(&self, name: &str) -> EcsResult<Value> {
        let lb = self.load_balancer(name)?;
        // Its listener is in its own host's kernel, which only that host
        // can remove (the record gone, nothing would remove it).
        if self.shared_store() && lb.host != self.host_id() {
            return Err(EcsError::invalid(format!(
                "loadBalancerName: {name:?} listens on host {}: delete it there",
                lb.host
            )));
        }
        let users = self.services_using(name)?;
        if let Some(s) = users.iter().find(|s| s.status == ServiceStatus::Active) {
            return Err(EcsError::invalid(format!(
                "loadBalancerName: {name:?} is used by service {} (delete it or detach it first)",
                s.service_name
            )));
        }
        self.forget_load_balancer(&lb)?;
        lb_sync::remove(name)?;
        Ok(json!({ "loadBalancer": lb }))
    }

    fn forget_load_balancer(&self, lb: &LoadBalancer) -> EcsResult<()> {
        self.store.commit(&[
            Op::Delete {
                key: keys::load_balancer(&lb.load_balancer_name),
                expect: Expect::Any,
            },
            Op::Delete {
                key: keys::port(&lb.host, &lb.protocol, lb.port),
                expect: Expect::Any,
            },
        ])?;
        Ok(())
    }

    /// Services (not INACTIVE, any cluster) attached to `name`.
    fn services_using(&self, name: &str) -> EcsResult<Vec<Service>> {
        let mut out = Vec::new();
        for (_, rec) in self.store.list(keys::SERVICES)? {
            let s: Service = decode(&rec.value)?;
            let uses = s
                .load_balancers
                .iter()
                .any(|e| e.load_balancer_name.as_deref() == Some(name));
            if s.status != ServiceStatus::Inactive && uses {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The tasks `name` sends to: in service (RUNNING, healthy, not
    /// stopping) in a service attached to it.
    pub(crate) fn targets(
        &self,
        name: &str,
    ) -> EcsResult<Vec<(Service, Task, berth_net::lb::Backend)>> {
        let mut out = Vec::new();
        // Each cluster's tasks read once, however many of its services.
        let mut tasks_of: std::collections::BTreeMap<String, Vec<Task>> = Default::default();
        for service in self.services_using(name)? {
            let cluster = crate::model::name_from_arn(&service.cluster_arn).to_string();
            if !tasks_of.contains_key(&cluster) {
                let tasks = self.all_tasks(&cluster)?;
                tasks_of.insert(cluster.clone(), tasks);
            }
            for (task, backend) in
                load_balancing::service_backends(&service, &tasks_of[&cluster], name)
            {
                out.push((service.clone(), task.clone(), backend));
            }
        }
        out.sort_by(|a, b| a.2.cmp(&b.2));
        Ok(out)
    }

    /// The load balancer `name` and the backends it should send to; None
    /// when it is gone (deleted while a draining service still named it).
    pub(crate) fn load_balancer_backends(
        &self,
        name: &str,
    ) -> EcsResult<Option<(LoadBalancer, Vec<berth_net::lb::Backend>)>> {
        let Ok(lb) = self.load_balancer(name) else {
            return Ok(None);
        };
        let backends = self.targets(name)?.into_iter().map(|(_, _, b)| b).collect();
        Ok(Some((lb, backends)))
    }

    /// Whether the load balancer `name` still has its record.
    pub(crate) fn load_balancer_exists(&self, name: &str) -> EcsResult<bool> {
        Ok(self.store.get(&keys::load_balancer(name))?.is_some())
    }

    /// Every load balancer's name.
    pub fn load_balancer_names(&self) -> EcsResult<Vec<String>> {
        Ok(self
            .store
            .list(keys::LOAD_BALANCERS)?
            .into_iter()
            .filter_map(|(k, _)| keys::load_balancer_name(&k).map(str::to_string))
            .collect())
    }

    /// Check a service's `loadBalancers` against its task definition: the
    /// load balancer exists, and the container maps the port.
    pub(crate) fn check_service_load_balancers(
        &self,
        entries: &[ServiceLoadBalancer],
        td: &TaskDefinition,
    ) -> EcsResult<()> {
        for (i, e) in entries.iter().enumerate() {
            let lb = self.load_balancer(load_balancing::entry_name(i, e)?)?;
            load_balancing::check_entry(i, e, &lb, td)?;
        }
        Ok(())
    }
}
