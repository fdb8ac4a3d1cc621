//! Placeholder in this branch (finished on main).
