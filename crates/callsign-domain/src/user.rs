//! Users: email and password rules.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserRuleError {
    #[error("Object didn't pass validation for format email: {0}")]
    InvalidEmail(String),
    #[error("PasswordStrengthError: Password is too weak")]
    WeakPassword,
    #[error("PasswordStrengthError: Password is too long (at most 72 bytes)")]
    LongPassword,
}

impl Email {
    /// A deliberately plain check: one `@`, a non-empty local part, a dotted domain, no spaces.
    /// Emails are compared lowercased, as Auth0 stores them.
    pub fn parse(raw: &str) -> Result<Self, UserRuleError> {
        // The limits apply to the stored, lowercased form: lowercasing can lengthen a string (`İ` → `i̇`).
        let s = raw.trim().to_lowercase();
        let bad = || UserRuleError::InvalidEmail(raw.to_owned());
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || s.len() > 254
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Auth0's "good" password policy, the default for new database connections: at least 8 characters and
/// three of the four classes lower case, upper case, digits, special characters. Passwords over 72 bytes are
/// refused too (Auth0's limit, inherited from bcrypt; kept for compatibility).
pub fn check_password_policy(password: &str) -> Result<(), UserRuleError> {
    if password.len() > 72 {
        return Err(UserRuleError::LongPassword);
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if password.chars().count() < 8 || classes.iter().filter(|b| **b).count() < 3 {
        return Err(UserRuleError::WeakPassword);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "a", "a@b", "@b.c", "a@b.", "a b@c.d", "a@@b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        // The length limits hold for the stored form, which lowercasing can lengthen (found by the property tests).
        let long = format!("{}@example.com", "İ".repeat(32));
        assert!(long.split_once('@').unwrap().0.len() == 64 && Email::parse(&long).is_err());
        let ok = format!("{}@example.com", "İ".repeat(21));
        assert_eq!(Email::parse(&ok).unwrap().as_str(), format!("{}@example.com", "i\u{307}".repeat(21)));
    }

    #[test]
    fn password_policy() {
        assert_eq!(check_password_policy("short1A"), Err(UserRuleError::WeakPassword));
        assert_eq!(check_password_policy("alllowercase"), Err(UserRuleError::WeakPassword));
        assert_eq!(check_password_policy("lower1234"), Err(UserRuleError::WeakPassword));
        assert!(check_password_policy("Lower1234").is_ok());
        assert!(check_password_policy("lower12!!").is_ok());
        assert_eq!(check_password_policy(&"Aa1".repeat(30)), Err(UserRuleError::LongPassword));
    }
}
