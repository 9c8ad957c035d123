//! The Mamba mixer of `mamba_ssm` (`Mamba`), written with tensor ops: in_proj, causal depthwise
//! conv1d, SiLU, x_proj -> (dt, B, C), dt_proj + softplus, A = -exp(A_log), selective scan,
//! D skip, SiLU(z) gate, out_proj. Parameter names and initialisation follow mamba_ssm, so the
//! selective-scan reference (`selective_scan_ref`) in Python reproduces it.
use super::config::MambaConfig;
use super::layers::{param, Linear};
use tch::{nn, nn::Init, Kind, Tensor};

#[derive(Debug)]
pub(crate) struct Mamba {
    in_proj: Linear,
    conv_w: Tensor,
    conv_b: Tensor,
    x_proj: Linear,
    dt_proj: Linear,
    a_log: Tensor,
    d: Tensor,
    out_proj: Linear,
    d_inner: i64,
    d_state: i64,
    d_conv: i64,
    dt_rank: i64,
}

impl Mamba {
    /// A mixer of width `d_model` (the SensorModulator's hidden width).
    pub fn new(p: nn::Path, d_model: i64, cfg: &MambaConfig) -> Self {
        let d_inner = cfg.expand * d_model;
        let (d_state, d_conv, dt_rank) = (cfg.d_state, cfg.d_conv, cfg.dt_rank);
        let in_proj = Linear::new(&p / "in_proj", d_model, 2 * d_inner, false, true);
        // nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner): fan_in = d_conv.
        let bound = 1.0 / (d_conv as f64).sqrt();
        let u = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let conv = &p / "conv1d";
        let conv_w = param(&conv, "weight", &[d_inner, 1, d_conv], u, true);
        let conv_b = param(&conv, "bias", &[d_inner], u, true);
        let x_proj = Linear::new(&p / "x_proj", d_inner, dt_rank + 2 * d_state, false, true);
        // dt_proj: weight ~ U(+-dt_rank^-0.5); bias = softplus^-1(dt), dt log-uniform in
        // [dt_min, dt_max] clamped at dt_init_floor.
        let std = (dt_rank as f64).powf(-0.5);
        let dt_proj = Linear::with_init(
            &p / "dt_proj",
            dt_rank,
            d_inner,
            Init::Uniform { lo: -std, up: std },
            None,
            true,
        );
        let dt_bias = tch::no_grad(|| {
            let (lmin, lmax) = (cfg.dt_min.ln(), cfg.dt_max.ln());
            let dt = (Tensor::rand([d_inner], (Kind::Float, p.device())) * (lmax - lmin) + lmin)
                .exp()
                .clamp_min(cfg.dt_init_floor);
            // inv_dt = dt + log(-expm1(-dt))
            &dt + (-(-&dt).expm1()).log()
        });
        let dt_proj = Linear {
            bs: Some((&p / "dt_proj").add("bias", dt_bias, true)),
            ..dt_proj
        };
        let a_log = tch::no_grad(|| {
            Tensor::arange_start(1, d_state + 1, (Kind::Float, p.device()))
                .log()
                .unsqueeze(0)
                .repeat([d_inner, 1])
        });
        let a_log = p.add("A_log", a_log, true);
        let d = param(&p, "D", &[d_inner], Init::Const(1.0), true);
        let out_proj = Linear::new(&p / "out_proj", d_inner, d_model, false, true);
        Mamba {
            in_proj,
            conv_w,
            conv_b,
            x_proj,
            dt_proj,
            a_log,
            d,
            out_proj,
            d_inner,
            d_state,
            d_conv,
            dt_rank,
        }
    }

    /// [B, L, d_model] -> [B, L, d_model]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (_, l, _) = x.size3().expect("mamba input must be [B, L, D]");
        let (di, n, r) = (self.d_inner, self.d_state, self.dt_rank);
        let xz = self.in_proj.forward(x); // [B, L, 2 di]
        let xs = xz.narrow(2, 0, di);
        let z = xz.narrow(2, di, di);
        // Causal depthwise conv over time: pad d_conv - 1 on both sides, keep the first L.
        let u = xs
            .transpose(1, 2)
            .conv1d(
                &self.conv_w,
                Some(&self.conv_b),
                [1],
                [self.d_conv - 1],
                [1],
                di,
            )
            .narrow(2, 0, l)
            .silu()
            .transpose(1, 2); // [B, L, di]
        let x_dbl = self.x_proj.forward(&u); // [B, L, r + 2n]
        let dt = self.dt_proj.forward(&x_dbl.narrow(2, 0, r)).softplus(); // [B, L, di]
        let b_mat = x_dbl.narrow(2, r, n); // [B, L, n]
        let c_mat = x_dbl.narrow(2, r + n, n); // [B, L, n]
        let a = -self.a_log.exp(); // [di, n]
        let y = selective_scan(&u, &dt, &a, &b_mat, &c_mat); // [B, L, di]
        let y = y + &u * &self.d;
        let y = y * z.silu();
        self.out_proj.forward(&y)
    }
}

/// The selective scan (mamba_ssm `selective_scan_ref` math), a loop of tensor ops over time:
/// h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, y_t = C_t . h_t.
/// u, dt: [B, L, D]; a: [D, N]; b, c: [B, L, N] -> [B, L, D]
fn selective_scan(u: &Tensor, dt: &Tensor, a: &Tensor, b: &Tensor, c: &Tensor) -> Tensor {
    let (bsz, l, d) = u.size3().expect("scan input must be [B, L, D]");
    let n = a.size()[1];
    let delta_a = (dt.unsqueeze(-1) * a).exp(); // [B, L, D, N]
    let delta_b_u = (dt * u).unsqueeze(-1) * b.unsqueeze(2); // [B, L, D, N]
                                                             // unbind, not select per step: select's backward allocates a full [B, L, D, N] gradient per
                                                             // step (quadratic in L); unbind's backward is one stack.
    let (da, dbu) = (delta_a.unbind(1), delta_b_u.unbind(1));
    let mut h = Tensor::zeros([bsz, d, n], (u.kind(), u.device()));
    let mut states = Vec::with_capacity(l as usize);
    for (a_t, bu_t) in da.iter().zip(&dbu) {
        h = a_t * &h + bu_t;
        states.push(h.shallow_clone());
    }
    let hs = Tensor::stack(&states, 1); // [B, L, D, N]
    (hs * c.unsqueeze(2)).sum_dim_intlist(-1, false, None::<Kind>)
}
