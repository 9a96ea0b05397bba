//! AMQP URLs as operators write them: the virtual host is percent-decoded
//! (`/%2f` is the default vhost `/`), which amqprs leaves to its caller.

use amqprs::connection::OpenConnectionArguments;

pub fn connection_arguments(url: &str) -> Result<OpenConnectionArguments, amqprs::error::Error> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("amqp", url));
    let (authority, vhost) = match rest.split_once('/') {
        Some((authority, vhost)) => (authority, Some(vhost)),
        None => (rest, None),
    };
    let mut arguments =
        OpenConnectionArguments::try_from(format!("{scheme}://{authority}").as_str())?;
    match vhost.map(percent_decode) {
        Some(vhost) if !vhost.is_empty() => {
            arguments.virtual_host(&vhost);
        }
        _ => {
            arguments.virtual_host("/");
        }
    }
    Ok(arguments)
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_virtual_host() {
        let args = connection_arguments("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(args.get_virtual_host(), "/");
        let args = connection_arguments("amqp://guest:guest@localhost:5672/").unwrap();
        assert_eq!(args.get_virtual_host(), "/");
        let args = connection_arguments("amqp://u:p@h:5672/chat").unwrap();
        assert_eq!(args.get_virtual_host(), "chat");
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
    }
}
