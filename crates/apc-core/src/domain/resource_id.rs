//! ARM resource ids: one strict parser and one URL builder (SPEC §10).
//!
//! Every id that reaches an outbound URL has passed [`ResourceId::parse`], and every URL is
//! built by [`arm_url`], which percent-encodes each path segment. Ids are matched
//! case-insensitively on keywords, provider and type, as ARM does.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

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

/// Characters allowed in resource names below the provider (VMs, scale sets, storage accounts,
/// watchers…): a strict ASCII subset. Compute's own rule for VM and scale-set names is a deny-list
/// that would let some non-ASCII through, but a name a person cannot tell from another
/// (`vm\u{430}1`, `vm\u{200b}1`) is a spoofing risk in answers and notifications, so these stay
/// ASCII. Anything else (`%`, `?`, `#`, `@`, `/`, spaces, control, non-ASCII) is refused.
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

/// Longest resource group name ARM allows, in UTF-16 code units as ARM counts them.
pub const MAX_GROUP_LEN: usize = 90;

/// A character ARM allows in a resource group name: Unicode letters and decimal digits
/// (general categories Lu, Ll, Lt, Lm, Lo, Nd), `_`, `-`, `.`, `(` and `)`.
/// Marks, format characters (zero-width, bidi overrides), symbols and spaces are not letters.
/// A character must also be alphanumeric to the standard library: the two Unicode tables may be
/// of different versions, and a code point only one of them has assigned is refused.
fn is_group_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')');
    }
    c.is_alphanumeric()
        && matches!(
            c.general_category(),
            GeneralCategory::UppercaseLetter
                | GeneralCategory::LowercaseLetter
                | GeneralCategory::TitlecaseLetter
                | GeneralCategory::ModifierLetter
                | GeneralCategory::OtherLetter
                | GeneralCategory::DecimalNumber
        )
}

/// ARM's resource group rule: 1 to 90 characters of [`is_group_char`], not ending in `.`.
/// Stricter in one way: `..` anywhere is refused (SPEC §10), though ARM would take `a..b`.
fn check_group(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Shape("empty name segment"));
    }
    if s.encode_utf16().count() > MAX_GROUP_LEN {
        return Err(IdError::Malformed("resource group name longer than 90"));
    }
    if !s.chars().all(is_group_char) {
        return Err(IdError::Malformed(
            "resource group name holds a character ARM does not allow (letters, digits, '_', '-', '.', '(' and ')')",
        ));
    }
    if s.ends_with('.') || s.contains("..") {
        return Err(IdError::Malformed("resource group name ends with '.' or holds '..'"));
    }
    Ok(())
}

/// ARM names compare case-insensitively. ARM (a .NET service) uses ordinal ignore-case
/// comparison: each character through its simple (one-to-one) upper-case mapping, no full case
/// folding (`ß` is not `SS`). This key does the same, then lower-cases ASCII so that an ASCII id
/// keeps the key it always had (`to_ascii_lowercase`), which stored records rely on.
pub fn fold_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                return c.to_ascii_lowercase();
            }
            let mut upper = c.to_uppercase();
            let u = match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                // A one-to-many mapping (`ß` → `SS`) is not a simple mapping: keep the character.
                _ => c,
            };
            u.to_ascii_lowercase()
        })
        .collect()
}

/// True when two names are the same for ARM (see [`fold_case`]).
pub fn same_name(a: &str, b: &str) -> bool {
    fold_case(a) == fold_case(b)
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

/// Where the resource group name sits: `subscriptions/{id}/resourceGroups/{name}`.
const GROUP_SEGMENT: usize = 3;
const NON_ASCII: &str = "non-ASCII, control or space characters";

/// Split an id into its segments after the common checks; `None` segments are refused.
fn segments(s: &str) -> Result<Vec<&str>, IdError> {
    if s.is_empty() {
        return Err(IdError::Malformed("empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::Malformed("longer than 1024 characters"));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(IdError::Malformed(NON_ASCII));
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
    // Only the resource group name (the fourth segment) may hold non-ASCII letters; its own
    // check says which. Keywords, the subscription, providers, types and names are ASCII.
    if segs.iter().enumerate().any(|(i, p)| i != GROUP_SEGMENT && !p.is_ascii()) {
        return Err(IdError::Malformed(NON_ASCII));
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
    check_group(segs[GROUP_SEGMENT])?;
    Ok((segs[1], Some(segs[GROUP_SEGMENT])))
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

    /// A case-folded form for comparisons and keys (ARM ids are case-insensitive; see
    /// [`fold_case`]). Lower case for ASCII ids.
    pub fn normalized(&self) -> String {
        fold_case(&self.to_string())
    }

    /// True when this resource lies within `scope`.
    pub fn is_within(&self, scope: &Scope) -> bool {
        self.subscription.eq_ignore_ascii_case(&scope.subscription)
            && scope.resource_group.as_ref().is_none_or(|rg| same_name(rg, &self.resource_group))
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

    /// Case-folded id (lower case for ASCII ids), the identity of "one capture per VM"
    /// (SPEC §5.1): two spellings ARM takes for the same VM give the same key.
    pub fn key(&self) -> String {
        fold_case(&self.id_string())
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

    fn vm_in(rg: &str) -> String {
        format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/vm1")
    }

    #[test]
    fn resource_groups_take_every_character_arm_allows() {
        for rg in [
            "rg-été",
            "资源组",
            "rg(1)",
            "Ελληνικά_1",
            "グループ",
            "ǅemal",     // Lt
            "rgʰ",       // Lm
            "rg٣",       // Nd (Arabic-Indic three)
            ".rg",       // ARM allows a leading period
            "RG.prod-1", // periods inside
            "𠀀",        // a supplementary-plane Lo
        ] {
            let id = ResourceId::parse(&vm_in(rg)).unwrap_or_else(|e| panic!("{rg}: {e}"));
            assert_eq!(id.resource_group(), rg);
            assert_eq!(id.to_string(), vm_in(rg));
            let scope = Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/{rg}")).unwrap();
            assert!(id.is_within(&scope), "{rg}");
        }
    }

    #[test]
    fn resource_groups_refuse_what_arm_refuses() {
        for (rg, why) in [
            ("rg.", "ends with a period"),
            ("rg-été.", "ends with a period"),
            ("rg..x", "holds '..' (SPEC §10)"),
            ("rg\u{200b}x", "zero-width space (Cf)"),
            ("rg\u{202e}x", "right-to-left override (Cf)"),
            ("rge\u{301}", "combining accent (Mn): only precomposed letters"),
            ("rg\u{a0}x", "no-break space"),
            ("rg\u{3000}x", "ideographic space"),
            ("rg🙂", "emoji (So)"),
            ("rg½", "fraction (No)"),
            ("rgⅣ", "Roman numeral (Nl)"),
            ("rg™", "symbol"),
            ("rg+x", "ASCII symbol"),
            ("rg~x", "tilde"),
            ("rg\u{e000}", "private use"),
        ] {
            assert!(ResourceId::parse(&vm_in(rg)).is_err(), "{rg:?} accepted: {why}");
            assert!(Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/{rg}")).is_err(), "{rg:?}: {why}");
        }
    }

    #[test]
    fn resource_group_length_counts_characters_as_arm_does() {
        for unit in ["g", "é", "组"] {
            assert!(ResourceId::parse(&vm_in(&unit.repeat(90))).is_ok(), "90 x {unit}");
            let e = ResourceId::parse(&vm_in(&unit.repeat(91))).unwrap_err();
            assert_eq!(e, IdError::Malformed("resource group name longer than 90"), "91 x {unit}");
        }
        // ARM counts UTF-16 code units: a supplementary-plane letter counts twice.
        assert!(ResourceId::parse(&vm_in(&"𠀀".repeat(45))).is_ok());
        assert!(ResourceId::parse(&vm_in(&format!("{}g", "𠀀".repeat(45)))).is_err());
    }

    #[test]
    fn only_the_resource_group_may_be_non_ascii() {
        let base = format!("/subscriptions/{SUB}/resourceGroups/rg/providers");
        for id in [
            format!("{base}/Microsoft.Compute/virtualMachines/vé1"),
            format!("{base}/Microsoft.Compute/virtualMachines/资源"),
            format!("{base}/Microsoft.Compute/virtualMachines/vm\u{430}1"),
            format!("{base}/Microsoft.C\u{43e}mpute/virtualMachines/vm1"),
            format!("{base}/Microsoft.Compute/virtualMachin\u{435}s/vm1"),
            format!("/subscriptions/{SUB}/resourceGroupś/rg/providers/Microsoft.Compute/virtualMachines/vm1"),
            format!("/subscriptions/{SUB}/resourceGroups/rg/providerś/Microsoft.Compute/virtualMachines/vm1"),
        ] {
            assert_eq!(ResourceId::parse(&id), Err(IdError::Malformed(NON_ASCII)), "{id}");
        }
    }

    #[test]
    fn non_ascii_groups_are_percent_encoded_as_utf8() {
        let id = ResourceId::parse(&vm_in("rg-été(1)")).unwrap();
        let url = arm_url("https://management.azure.com", &id.path_segments(), "2025-04-01");
        assert_eq!(
            url,
            format!(
                "https://management.azure.com/subscriptions/{SUB}/resourceGroups/rg-%C3%A9t%C3%A9%281%29/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2025-04-01"
            )
        );
        let url = arm_url("https://management.azure.com", &["resourceGroups", "资源组"], "1");
        assert_eq!(url, "https://management.azure.com/resourceGroups/%E8%B5%84%E6%BA%90%E7%BB%84?api-version=1");
    }

    #[test]
    fn names_compare_as_arm_compares_them() {
        // Simple per-character upper-case mapping, as .NET's OrdinalIgnoreCase.
        assert!(same_name("rg-été", "RG-ÉTÉ"));
        assert!(same_name("ΣΊΣΥΦΟΣ", "σίσυφος"));
        assert!(same_name("σ", "ς"), "both upper-case to Σ");
        assert!(!same_name("straße", "STRASSE"), "ß → SS is a full mapping, not a simple one");
        assert!(!same_name("rg-e", "rg-é"));
        // ASCII keys are what they always were.
        assert_eq!(fold_case("/Subscriptions/AB/resourceGroups/RG1"), "/subscriptions/ab/resourcegroups/rg1");

        let a = Target::from_id(&ResourceId::parse(&vm_in("Grüne-RG")).unwrap()).unwrap();
        let b = Target::from_id(&ResourceId::parse(&vm_in("GRÜNE-rg")).unwrap()).unwrap();
        assert_eq!(a.key(), b.key());
        // Non-ASCII letters key by their upper case, ASCII by its lower case.
        assert_eq!(
            a.key(),
            format!("/subscriptions/{SUB}/resourcegroups/grÜne-rg/providers/microsoft.compute/virtualmachines/vm1")
        );
        let c = Target::from_id(&ResourceId::parse(&vm_in("Grune-RG")).unwrap()).unwrap();
        assert_ne!(a.key(), c.key());
        let id = ResourceId::parse(&vm_in("Grüne-RG")).unwrap();
        assert!(id.is_within(&Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/GRÜNE-RG")).unwrap()));
        assert!(!id.is_within(&Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/GRUNE-RG")).unwrap()));
        assert_eq!(id.normalized(), a.key());
    }
}
