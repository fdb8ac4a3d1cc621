//! Per-tenant quotas as a tenant stores them. Absent fields are unlimited; the operator's
//! `HOOKRELAY_DEFAULT_QUOTAS` fills in for tenants that set none.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_rate_per_sec: Option<u64>,
}

impl Quotas {
    /// Parses `events_per_minute=600,delivery_rate_per_sec=10`.
    pub fn parse_list(raw: &str) -> Result<Self, String> {
        let mut q = Quotas::default();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not name=value"))?;
            let value: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: value must be a whole number"))?;
            let slot = match name.trim() {
                "events_per_minute" => &mut q.events_per_minute,
                "events_per_day" => &mut q.events_per_day,
                "webhooks" => &mut q.webhooks,
                "delivery_rate_per_sec" => &mut q.delivery_rate_per_sec,
                other => return Err(format!("unknown quota `{other}`")),
            };
            *slot = Some(value);
        }
        Ok(q)
    }

    /// This tenant's own limits, with the operator's defaults for what it leaves unset.
    pub fn or_defaults(&self, defaults: &Quotas) -> Quotas {
        Quotas {
            events_per_minute: self.events_per_minute.or(defaults.events_per_minute),
            events_per_day: self.events_per_day.or(defaults.events_per_day),
            webhooks: self.webhooks.or(defaults.webhooks),
            delivery_rate_per_sec: self
                .delivery_rate_per_sec
                .or(defaults.delivery_rate_per_sec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_env_list_and_refuses_junk() {
        let q = Quotas::parse_list("events_per_minute=600, delivery_rate_per_sec=10").unwrap();
        assert_eq!(q.events_per_minute, Some(600));
        assert_eq!(q.delivery_rate_per_sec, Some(10));
        assert_eq!(q.webhooks, None);
        assert!(Quotas::parse_list("events_per_hour=1").is_err());
        assert!(Quotas::parse_list("webhooks=many").is_err());
        assert_eq!(Quotas::parse_list("").unwrap(), Quotas::default());
    }

    #[test]
    fn tenant_values_win_over_defaults() {
        let defaults = Quotas::parse_list("events_per_minute=600,webhooks=5").unwrap();
        let own = Quotas {
            webhooks: Some(50),
            ..Default::default()
        };
        let eff = own.or_defaults(&defaults);
        assert_eq!((eff.events_per_minute, eff.webhooks), (Some(600), Some(50)));
    }
}
