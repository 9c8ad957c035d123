//! The supervised contrastive loss and the k-NN vote of the `supcon` head, as free functions on
//! tensors (checked against PyTorch and scikit-learn in `shared/tests/heads_supcon.rs`).
use tch::{Kind, Tensor};

/// Supervised contrastive loss (Khosla et al. 2020, `L_out`, one view per sample) of `emb`
/// `[B, E]` (L2-normalised rows) with class codes `classes` `[B]` (i64):
/// for every anchor `i` with at least one positive (another sample of its class),
/// `l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t) )`;
/// the loss is the mean of `l_i` over those anchors (anchors without a positive are left out;
/// no `t / base_temperature` factor). Returns the scalar loss and the number of anchors used;
/// with no anchor the loss is a zero that still carries a gradient path.
pub fn supcon_loss(emb: &Tensor, classes: &Tensor, temperature: f64) -> (Tensor, i64) {
    let b = emb.size()[0];
    let dev = emb.device();
    let eye = Tensor::eye(b, (Kind::Bool, dev));
    let logits = emb.matmul(&emb.transpose(0, 1)) / temperature;
    // the anchor itself is not in the denominator: a large negative logit (exp underflows to 0,
    // and `0 * logit` stays finite where -inf would give NaN)
    let logits = logits.masked_fill(&eye, -1e9);
    let log_prob = logits.log_softmax(1, emb.kind());
    let same = classes.unsqueeze(1).eq_tensor(&classes.unsqueeze(0));
    let pos = same.logical_and(&eye.logical_not()).to_kind(emb.kind());
    let n_pos = pos.sum_dim_intlist(1, false, emb.kind());
    let has = n_pos.gt(0.0).to_kind(emb.kind());
    let per_anchor =
        -(&pos * &log_prob).sum_dim_intlist(1, false, emb.kind()) / n_pos.clamp_min(1.0);
    let anchors = has.sum(Kind::Int64).int64_value(&[]);
    let loss = (per_anchor * &has).sum(emb.kind()) / (anchors.max(1) as f64);
    (loss, anchors)
}

/// The k-NN vote of `query` `[Q, E]` on `bank` `[N, E]` with class codes `bank_classes` `[N]`
/// (i64, codes < `n_codes`): the `k` bank rows of largest cosine similarity `s` (rows are
/// normalised here), each weighted `1 / d` with the cosine distance `d = clamp(1 - s, 0, 2)`
/// (scikit-learn's `KNeighborsClassifier(metric="cosine", weights="distance")`; a distance
/// below 1e-12 counts as 1e-12, so an exact match dominates as scikit-learn's zero-distance
/// rule makes it). Returns the predicted class `[Q]` (i64: the class of largest summed
/// weight, lowest code on ties), the class weights `[Q, n_codes]` normalised to sum 1, and the
/// defect probability `[Q]` (1 - the weight share of class 0). `k` is capped at `N`.
pub fn knn_vote(
    query: &Tensor,
    bank: &Tensor,
    bank_classes: &Tensor,
    k: i64,
    n_codes: i64,
) -> (Tensor, Tensor, Tensor) {
    let norm = |t: &Tensor| {
        let n = t.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
        t / n
    };
    let k = k.min(bank.size()[0]).max(1);
    let sims = norm(query).matmul(&norm(bank).transpose(0, 1)); // [Q, N]
    let (top, idx) = sims.topk(k, 1, true, true);
    let w = (-top + 1.0).clamp(0.0, 2.0).clamp_min(1e-12).reciprocal(); // [Q, k]
    let q = query.size()[0];
    let cls = bank_classes
        .index_select(0, &idx.reshape([-1]))
        .reshape([q, k]);
    let votes = Tensor::zeros([q, n_codes], (w.kind(), w.device())).scatter_add(1, &cls, &w);
    let share = &votes / votes.sum_dim_intlist(1, true, w.kind());
    let pred = votes.argmax(1, false);
    let p_defect = -share.select(1, 0) + 1.0;
    (pred, share, p_defect)
}
