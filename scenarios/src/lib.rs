//! The scenario vocabulary and the catalogue of named scenarios; not built yet — see issue 7.
