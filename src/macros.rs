//! Macros shared by the crate's modules.

/// A fieldless enum whose variants are counter slots (`variant as usize` is its index in
/// `ALL`), each with a stable snake_case label for metrics and logs. The variant list is
/// written once, so the enum, `ALL` and `as_str` cannot drift apart.
macro_rules! labeled_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in slot order (a variant's discriminant is its index here).
            pub const ALL: [$name; [$($label),+].len()] = [$($name::$variant),+];

            /// A short, stable, snake_case name, used in logs and as a metric label.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }
        }
    };
}
