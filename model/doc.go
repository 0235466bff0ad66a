// Package model holds the data a training step of spcheck's model starts from: every
// parameter's name and shape (ParamShapes), its deterministic initial value, element by element
// (InitValue, so a rank holding a shard generates exactly the full tensor's values for its
// elements), and the input batch (MakeInputs: ids, labels with ignored positions, loss mask,
// cu_seqlens). The oracle computes the reference from it and the simulator cuts its shards and
// micro-batches from it, so neither depends on the other.
package model
