"""PyTorch / scikit-learn reference of the `supcon` head's loss and k-NN evaluation.

Reads IN.json (written by shared/tests/heads_supcon.rs):
  emb [B, E] (unit rows), labels [B], temperature,
  bank [N, E], bank_classes [N], query [Q, E], query_classes [Q], k.
Writes OUT.json:
  loss: the supervised contrastive loss (Khosla et al. 2020, L_out, one view: positives are
        the other samples of the anchor's class, the denominator every other sample, anchors
        without a positive left out, mean over anchors), float64, and grad: d loss / d emb;
  pred, p_defect: KNeighborsClassifier(n_neighbors=k, metric="cosine", weights="distance")
        fitted on the bank: predict(query) and 1 - predict_proba(query)[:, class 0];
  accuracy, macro_f1, per_class_f1 {code: f1}: accuracy_score and f1_score(average=None /
        "macro", labels = sorted union of true and predicted classes) of query_classes vs pred.

Usage: supcon_torch.py IN.json OUT.json
"""
import json
import sys

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neighbors import KNeighborsClassifier

inp, out = sys.argv[1], sys.argv[2]
d = json.load(open(inp))

z = torch.tensor(d["emb"], dtype=torch.float64, requires_grad=True)
y = torch.tensor(d["labels"])
t = d["temperature"]
b = z.shape[0]
sim = z @ z.T / t
not_self = ~torch.eye(b, dtype=torch.bool)
pos = (y[:, None] == y[None, :]) & not_self
terms = []
for i in range(b):
    if pos[i].sum() == 0:
        continue
    denom = torch.logsumexp(sim[i][not_self[i]], dim=0)
    terms.append(-(sim[i][pos[i]] - denom).mean())
loss = torch.stack(terms).mean()
loss.backward()

bank = np.asarray(d["bank"], dtype=np.float64)
bank_y = np.asarray(d["bank_classes"])
q = np.asarray(d["query"], dtype=np.float64)
q_y = np.asarray(d["query_classes"])
knn = KNeighborsClassifier(n_neighbors=d["k"], metric="cosine", weights="distance", algorithm="brute")
knn.fit(bank, bank_y)
pred = knn.predict(q)
proba = knn.predict_proba(q)
good = list(knn.classes_).index(0)
labels = sorted(set(q_y.tolist()) | set(pred.tolist()))
f1 = f1_score(q_y, pred, labels=labels, average=None, zero_division=0)
json.dump(
    {
        "loss": loss.item(),
        "anchors": len(terms),
        "grad": z.grad.tolist(),
        "pred": pred.tolist(),
        "p_defect": (1.0 - proba[:, good]).tolist(),
        "accuracy": accuracy_score(q_y, pred),
        "macro_f1": float(f1_score(q_y, pred, labels=labels, average="macro", zero_division=0)),
        "per_class_f1": {str(c): float(v) for c, v in zip(labels, f1)},
    },
    open(out, "w"),
)
print(f"supcon oracle: loss {loss.item():.6f} over {len(terms)} anchors, k-NN accuracy {accuracy_score(q_y, pred):.4f}")
