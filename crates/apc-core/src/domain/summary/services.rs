//! Well-known service names for the destination ports a person on call will recognise.

/// The service usually behind `port` for `proto` (6 TCP, 17 UDP), if it is a well-known one.
pub(crate) fn service_name(proto: u8, port: u16) -> Option<&'static str> {
    let tcp = proto == 6;
    let udp = proto == 17;
    Some(match port {
        20 | 21 if tcp => "ftp",
        22 if tcp => "ssh",
        23 if tcp => "telnet",
        25 if tcp => "smtp",
        53 => "dns",
        67 | 68 if udp => "dhcp",
        80 if tcp => "http",
        88 => "kerberos",
        110 if tcp => "pop3",
        123 if udp => "ntp",
        135 if tcp => "msrpc",
        137..=139 => "netbios",
        143 if tcp => "imap",
        161 | 162 if udp => "snmp",
        389 => "ldap",
        443 if tcp => "https",
        443 if udp => "quic",
        445 if tcp => "smb",
        465 | 587 if tcp => "smtp",
        514 if udp => "syslog",
        636 if tcp => "ldaps",
        993 if tcp => "imaps",
        995 if tcp => "pop3s",
        1433 if tcp => "mssql",
        1521 if tcp => "oracle",
        2049 => "nfs",
        3306 if tcp => "mysql",
        3389 => "rdp",
        5432 if tcp => "postgresql",
        5671 | 5672 if tcp => "amqp",
        5985 if tcp => "winrm",
        5986 if tcp => "winrm-https",
        6379 if tcp => "redis",
        8080 if tcp => "http-alt",
        8443 if tcp => "https-alt",
        9092 if tcp => "kafka",
        9200 if tcp => "elasticsearch",
        27017 if tcp => "mongodb",
        _ => return None,
    })
}
