//! ARM resource ids: one strict parser and one URL builder (SPEC §10).
//!
//! Every id that reaches an outbound URL has passed [`ResourceId::parse`], and every URL is
//! built by [`arm_url`], which percent-encodes each path segment. Ids are matched
//! case-insensitively on keywords, provider and type, as ARM does.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Longest id we accept. ARM ids of VMs are far shorter; this only bounds work.
pub const MAX_ID_LEN: usize = 1024;
/// Longest single name segment we accept (ARM's longest names are 260 for some types, VMs 64).
pub const MAX_NAME_LEN: usize = 260;

/// Why a string is not an acceptable ARM resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty, too long, or with characters ARM ids never hold.
    #[error("resource id is malformed: {0}")]
    Malformed(&'static str),
    /// The segments are not `/subscriptions/{id}/resourceGroups/{name}/providers/{ns}/{type}/{name}…`.
    #[error("resource id has the wrong shape: {0}")]
    Shape(&'static str),
}

/// A parsed ARM resource id below a resource group:
/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{type}/{name}]…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    subscription: String,
    resource_group: String,
    namespace: String,
    /// (type, name) pairs, outermost first. Never empty.
    resources: Vec<(String, String)>,
}

/// An ARM scope for `allowed_scopes`: a subscription, or a resource group in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    subscription: String,
    resource_group: Option<String>,
}

fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Characters allowed in resource group and resource names: a strict ASCII subset of what
/// ARM allows. Anything else (`%`, `?`, `#`, `@`, `/`, spaces, control, non-ASCII) is refused.
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'(' | b')')
}

fn check_name(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Shape("empty name segment"));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(IdError::Malformed("name segment too long"));
    }
    if !s.bytes().all(is_name_char) {
        return Err(IdError::Malformed("name holds a character ARM names never hold"));
    }
    if s.contains("..") || s.starts_with('.') || s.ends_with('.') {
        return Err(IdError::Malformed("name holds '..' or starts or ends with '.'"));
    }
    Ok(())
}

fn check_namespace(s: &str) -> Result<(), IdError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.split('.').count() >= 2
        && s.split('.').all(|p| {
            !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()) && p.as_bytes()[0].is_ascii_alphabetic()
        });
    if ok { Ok(()) } else { Err(IdError::Shape("provider namespace is not like Microsoft.Compute")) }
}

fn check_type(s: &str) -> Result<(), IdError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes().all(|c| c.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(IdError::Shape("resource type is not alphanumeric")) }
}

/// Split an id into its segments after the common checks; `None` segments are refused.
fn segments(s: &str) -> Result<Vec<&str>, IdError> {
    if s.is_empty() {
        return Err(IdError::Malformed("empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::Malformed("longer than 1024 characters"));
    }
    if !s.is_ascii() || s.bytes().any(|c| c.is_ascii_control() || c == b' ') {
        return Err(IdError::Malformed("non-ASCII, control or space characters"));
    }
    if s.bytes().any(|c| matches!(c, b'?' | b'#' | b'%' | b'@' | b'\\')) {
        return Err(IdError::Malformed("holds '?', '#', '%', '@' or '\\'"));
    }
    let Some(rest) = s.strip_prefix('/') else {
        return Err(IdError::Shape("does not start with '/'"));
    };
    // A single trailing slash is tolerated (some tools print one); `//` anywhere is not.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|p| p.is_empty()) {
        return Err(IdError::Shape("empty segment ('//')"));
    }
    if segs.iter().any(|p| *p == "." || *p == "..") {
        return Err(IdError::Malformed("'.' or '..' segment"));
    }
    Ok(segs)
}

fn subscription_and_group<'a>(segs: &[&'a str]) -> Result<(&'a str, Option<&'a str>), IdError> {
    if segs.len() < 2 || !segs[0].eq_ignore_ascii_case("subscriptions") {
        return Err(IdError::Shape("does not start with /subscriptions/{id}"));
    }
    if !is_guid(segs[1]) {
        return Err(IdError::Shape("subscription id is not a GUID"));
    }
    if segs.len() == 2 {
        return Ok((segs[1], None));
    }
    if segs.len() < 4 || !segs[2].eq_ignore_ascii_case("resourceGroups") {
        return Err(IdError::Shape("no /resourceGroups/{name} after the subscription"));
    }
    check_name(segs[3])?;
    if segs[3].len() > 90 {
        return Err(IdError::Malformed("resource group name longer than 90"));
    }
    Ok((segs[1], Some(segs[3])))
}

impl ResourceId {
    /// Parse a resource id strictly. Never panics.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let segs = segments(s)?;
        let (sub, rg) = subscription_and_group(&segs)?;
        let Some(rg) = rg else {
            return Err(IdError::Shape("a subscription, not a resource"));
        };
        if segs.len() < 7 || !segs[4].eq_ignore_ascii_case("providers") {
            return Err(IdError::Shape("no /providers/{namespace}/{type}/{name}"));
        }
        check_namespace(segs[5])?;
        let pairs = &segs[6..];
        if pairs.len() % 2 != 0 {
            return Err(IdError::Shape("a resource type without a name"));
        }
        let mut resources = Vec::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks(2) {
            check_type(pair[0])?;
            check_name(pair[1])?;
            resources.push((pair[0].to_string(), pair[1].to_string()));
        }
        Ok(ResourceId {
            subscription: sub.to_ascii_lowercase(),
            resource_group: rg.to_string(),
            namespace: segs[5].to_string(),
            resources,
        })
    }

    /// Build an id from parts that are validated as [`ResourceId::parse`] would.
    pub fn new(
        subscription: &str,
        resource_group: &str,
        namespace: &str,
        resources: &[(&str, &str)],
    ) -> Result<Self, IdError> {
        let mut s = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{namespace}");
        for (t, n) in resources {
            s.push('/');
            s.push_str(t);
            s.push('/');
            s.push_str(n);
        }
        Self::parse(&s)
    }

    /// The subscription id, lower case.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }
    /// The resource group name as given.
    pub fn resource_group(&self) -> &str {
        &self.resource_group
    }
    /// The provider namespace as given.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    /// (type, name) pairs, outermost first.
    pub fn resources(&self) -> &[(String, String)] {
        &self.resources
    }
    /// The last name segment.
    pub fn name(&self) -> &str {
        &self.resources[self.resources.len() - 1].1
    }

    /// True when the id is `{namespace}/{types[0]}/…/{types[n]}/…` (case-insensitive).
    pub fn is_type(&self, namespace: &str, types: &[&str]) -> bool {
        self.namespace.eq_ignore_ascii_case(namespace)
            && self.resources.len() == types.len()
            && self.resources.iter().zip(types).all(|((t, _), want)| t.eq_ignore_ascii_case(want))
    }

    /// The path segments, in order, for [`arm_url`].
    pub fn path_segments(&self) -> Vec<&str> {
        let mut v = vec![
            "subscriptions",
            &self.subscription,
            "resourceGroups",
            &self.resource_group,
            "providers",
            &self.namespace,
        ];
        for (t, n) in &self.resources {
            v.push(t);
            v.push(n);
        }
        v
    }

    /// A lower-case form for comparisons and keys (ARM ids are case-insensitive).
    pub fn normalized(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// True when this resource lies within `scope`.
    pub fn is_within(&self, scope: &Scope) -> bool {
        self.subscription.eq_ignore_ascii_case(&scope.subscription)
            && scope.resource_group.as_ref().is_none_or(|rg| rg.eq_ignore_ascii_case(&self.resource_group))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/{}",
            self.subscription, self.resource_group, self.namespace
        )?;
        for (t, n) in &self.resources {
            write!(f, "/{t}/{n}")?;
        }
        Ok(())
    }
}

impl Scope {
    /// Parse `/subscriptions/{id}` or `/subscriptions/{id}/resourceGroups/{name}`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let segs = segments(s)?;
        let (sub, rg) = subscription_and_group(&segs)?;
        if segs.len() > 4 {
            return Err(IdError::Shape("a scope is a subscription or a resource group"));
        }
        Ok(Scope { subscription: sub.to_ascii_lowercase(), resource_group: rg.map(str::to_string) })
    }
    /// The subscription id, lower case.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }
    /// The path segments, in order, for [`arm_url`].
    pub fn path_segments(&self) -> Vec<&str> {
        let mut v = vec!["subscriptions", self.subscription.as_str()];
        if let Some(rg) = &self.resource_group {
            v.push("resourceGroups");
            v.push(rg);
        }
        v
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/subscriptions/{}", self.subscription)?;
        if let Some(rg) = &self.resource_group {
            write!(f, "/resourceGroups/{rg}")?;
        }
        Ok(())
    }
}

/// What a capture can target (SPEC §3): a VM, a scale set, or one scale-set instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `Microsoft.Compute/virtualMachines/{name}`.
    Vm(ResourceId),
    /// `Microsoft.Compute/virtualMachineScaleSets/{name}`.
    Vmss(ResourceId),
    /// `Microsoft.Compute/virtualMachineScaleSets/{name}/virtualMachines/{instance}`.
    VmssInstance {
        /// The scale set.
        vmss: ResourceId,
        /// The instance id (as in the id).
        instance: String,
    },
}

impl Target {
    /// Classify a parsed id; `None` when it is not a VM, scale set or scale-set instance.
    pub fn from_id(id: &ResourceId) -> Option<Target> {
        const NS: &str = "Microsoft.Compute";
        if id.is_type(NS, &["virtualMachines"]) {
            Some(Target::Vm(canonical(id, &["virtualMachines"])))
        } else if id.is_type(NS, &["virtualMachineScaleSets"]) {
            Some(Target::Vmss(canonical(id, &["virtualMachineScaleSets"])))
        } else if id.is_type(NS, &["virtualMachineScaleSets", "virtualMachines"]) {
            let vmss = ResourceId {
                subscription: id.subscription.clone(),
                resource_group: id.resource_group.clone(),
                namespace: NS.to_string(),
                resources: vec![("virtualMachineScaleSets".to_string(), id.resources[0].1.clone())],
            };
            Some(Target::VmssInstance { vmss, instance: id.resources[1].1.clone() })
        } else {
            None
        }
    }

    /// The resource the capture is created on: the VM, or the scale set.
    pub fn capture_target(&self) -> &ResourceId {
        match self {
            Target::Vm(id) | Target::Vmss(id) => id,
            Target::VmssInstance { vmss, .. } => vmss,
        }
    }

    /// A short, human name: the VM name, `vmss`, or `vmss/instance`.
    pub fn display_name(&self) -> String {
        match self {
            Target::Vm(id) | Target::Vmss(id) => id.name().to_string(),
            Target::VmssInstance { vmss, instance } => format!("{}_{}", vmss.name(), instance),
        }
    }

    /// The full id as it names the targeted machine(s), in canonical casing.
    pub fn id_string(&self) -> String {
        match self {
            Target::Vm(id) | Target::Vmss(id) => id.to_string(),
            Target::VmssInstance { vmss, instance } => format!("{vmss}/virtualMachines/{instance}"),
        }
    }

    /// Lower-case id, the identity of "one capture per VM" (SPEC §5.1).
    pub fn key(&self) -> String {
        self.id_string().to_ascii_lowercase()
    }
}

/// Canonical casing of namespace and types, keeping names as given.
fn canonical(id: &ResourceId, types: &[&str]) -> ResourceId {
    ResourceId {
        subscription: id.subscription.clone(),
        resource_group: id.resource_group.clone(),
        namespace: "Microsoft.Compute".to_string(),
        resources: id.resources.iter().zip(types).map(|((_, n), t)| (t.to_string(), n.clone())).collect(),
    }
}

/// Everything but RFC 3986 unreserved characters is encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Build `{endpoint}/{seg}/{seg}…?api-version={v}` with each segment percent-encoded.
/// `endpoint` is `scheme://host[:port]` from configuration (no trailing slash).
pub fn arm_url(endpoint: &str, segments: &[&str], api_version: &str) -> String {
    let mut url = endpoint.trim_end_matches('/').to_string();
    for s in segments {
        url.push('/');
        url.extend(utf8_percent_encode(s, SEGMENT));
    }
    url.push_str("?api-version=");
    url.extend(utf8_percent_encode(api_version, SEGMENT));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-0000-0000-0000-000000000000";

    #[test]
    fn parses_vm_case_insensitively() {
        let id = ResourceId::parse(&format!(
            "/subscriptions/{SUB}/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1"
        ))
        .unwrap();
        let t = Target::from_id(&id).unwrap();
        assert_eq!(
            t.id_string(),
            format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1")
        );
        assert_eq!(t.display_name(), "vm1");
    }

    #[test]
    fn scale_set_instance() {
        let id = ResourceId::parse(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/3"
        ))
        .unwrap();
        match Target::from_id(&id).unwrap() {
            Target::VmssInstance { vmss, instance } => {
                assert_eq!(vmss.name(), "ss");
                assert_eq!(instance, "3");
            }
            other => panic!("not an instance: {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_ids() {
        for bad in [
            "",
            "subscriptions/x",
            "/subscriptions/<subscription ID>/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/../x"),
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm%2F"),
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm?x"),
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"),
            &format!("/subscriptions/{SUB}//resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"),
            &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vé"),
        ] {
            assert!(ResourceId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn url_encodes_segments() {
        assert_eq!(
            arm_url("https://management.azure.com/", &["subscriptions", "a b", "x(1)"], "2025-07-01"),
            "https://management.azure.com/subscriptions/a%20b/x%281%29?api-version=2025-07-01"
        );
    }

    #[test]
    fn scopes() {
        let id = ResourceId::parse(&format!(
            "/subscriptions/{SUB}/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm"
        ))
        .unwrap();
        assert!(id.is_within(&Scope::parse(&format!("/subscriptions/{SUB}")).unwrap()));
        assert!(id.is_within(&Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg")).unwrap()));
        assert!(!id.is_within(&Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/other")).unwrap()));
    }
}
