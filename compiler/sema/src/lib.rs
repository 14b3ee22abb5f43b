//! Name resolution and type checking: the standard library prelude, units, dimensioned domain types, shape inference; produces the typed HIR.
