#include "histoflow/torch_encoders/cpu_linear.hpp"

#include "histoflow/torch_encoders/autocast.hpp"

#include <cstdlib>
#include <cstring>

#ifdef HISTOFLOW_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace histoflow::torch_encoders {
namespace F = torch::nn::functional;

bool onednn_products_enabled() {
#ifdef HISTOFLOW_HAVE_ONEDNN
  static const bool enabled = [] {
    const char* setting = std::getenv("HISTOFLOW_CPU_GEMM");
    return !(setting && std::strcmp(setting, "aten") == 0);
  }();
  return enabled;
#else
  return false;
#endif
}

namespace {

// sizes with the last one replaced: a product's output shape for its input's.
std::vector<std::int64_t> with_last(torch::IntArrayRef sizes, std::int64_t last) {
  auto out = sizes.vec();
  out.back() = last;
  return out;
}

// x [..., K] against a weight [N, K].
void check_width(const torch::Tensor& x, const torch::Tensor& weight) {
  TORCH_CHECK(x.size(-1) == weight.size(1), "linear: inputs of width ", x.size(-1), " for a weight [", weight.size(0), ", ",
              weight.size(1), "]");
}

// fp32 CPU tensors outside autocast (which would cast the product to bf16 itself).
bool on_onednn(std::initializer_list<const torch::Tensor*> tensors) {
  if (!onednn_products_enabled() || autocast_enabled(c10::DeviceType::CPU)) return false;
  for (const auto* t : tensors)
    if (t->defined() && (!t->device().is_cpu() || t->scalar_type() != torch::kFloat || t->layout() != torch::kStrided)) return false;
  return true;
}

#ifdef HISTOFLOW_HAVE_ONEDNN
// C [M, N] = beta C + op(A) op(B), row-major contiguous fp32; op is a transpose where the flag is 'T'.
void sgemm(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const torch::Tensor& a,
           const torch::Tensor& b, float beta, torch::Tensor& c) {
  // oneDNN's OpenMP region takes this thread's OpenMP thread count: LibTorch's (a new thread gets it here).
  at::internal::lazy_init_num_threads();
  const auto status = dnnl_sgemm(trans_a, trans_b, m, n, k, 1.0f, a.data_ptr<float>(), a.size(1), b.data_ptr<float>(),
                                 b.size(1), beta, c.data_ptr<float>(), c.size(1));
  TORCH_CHECK(status == dnnl_success, "oneDNN's fp32 matrix product failed (dnnl_status_t ", static_cast<int>(status), ") for [",
              m, " x ", k, "] x [", k, " x ", n, "]");
}

// C [M, N] fp32 = op(A) op(B) for bf16 A and B, row-major contiguous, by oneDNN's matmul primitive (oneDNN keeps
// the primitive for a shape in its cache: the same shapes come back every step).
void gemm_bf16(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const torch::Tensor& a,
               const torch::Tensor& b, torch::Tensor& c) {
  at::internal::lazy_init_num_threads();
  using dnnl::memory;
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  // op(X) [rows, cols] of a row-major X whose rows are ld apart: a transpose is the same memory read by columns.
  const auto operand = [](char trans, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
    return trans == 'T' ? memory::desc({rows, cols}, memory::data_type::bf16, memory::dims{1, ld})
                        : memory::desc({rows, cols}, memory::data_type::bf16, memory::dims{ld, 1});
  };
  const auto a_desc = operand(trans_a, m, k, a.size(1)), b_desc = operand(trans_b, k, n, b.size(1));
  const memory::desc c_desc({m, n}, memory::data_type::f32, memory::dims{c.size(1), 1});
  const dnnl::matmul::primitive_desc product(dnnl::matmul::desc(a_desc, b_desc, c_desc), engine);
  dnnl::stream stream(engine);
  dnnl::matmul(product).execute(stream, {{DNNL_ARG_SRC, memory(a_desc, engine, a.data_ptr())},
                                         {DNNL_ARG_WEIGHTS, memory(b_desc, engine, b.data_ptr())},
                                         {DNNL_ARG_DST, memory(c_desc, engine, c.data_ptr())}});
  stream.wait();
}
#else
void gemm_bf16(char, char, std::int64_t, std::int64_t, std::int64_t, const torch::Tensor&, const torch::Tensor&, torch::Tensor&) {
  TORCH_CHECK(false, "histoflow was built without oneDNN");
}
void sgemm(char, char, std::int64_t, std::int64_t, std::int64_t, const torch::Tensor&, const torch::Tensor&, float, torch::Tensor&) {
  TORCH_CHECK(false, "histoflow was built without oneDNN");
}
#endif

// rows [M, K] W^T (+ b) into a new [M, N].
torch::Tensor product(const torch::Tensor& rows, const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto m = rows.size(0), k = rows.size(1), n = weight.size(0);
  auto out = torch::empty({m, n}, rows.options());
  if (bias.defined()) out.copy_(bias.expand({m, n}));  // a copy: expand(...).contiguous() of one row is the bias itself
  sgemm('N', 'T', m, n, k, rows, weight, bias.defined() ? 1.0f : 0.0f, out);
  return out;
}

// bias: [N], or a tensor without elements for none (LibTorch 1.13's Function::apply takes no undefined tensors).
class OneDnnLinear : public torch::autograd::Function<OneDnnLinear> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    const auto rows = x.reshape({-1, x.size(-1)}).contiguous();
    const auto w = weight.contiguous();
    const bool has_bias = bias.numel() > 0;
    ctx->save_for_backward({rows, w});
    ctx->saved_data["has_bias"] = has_bias;
    return product(rows, w, has_bias ? bias : torch::Tensor()).view(with_last(x.sizes(), weight.size(0)));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &rows = saved[0], &w = saved[1];
    const auto m = rows.size(0), k = rows.size(1), n = w.size(0);
    const auto g = grads[0].reshape({m, n}).contiguous();
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {  // dY W: [M, N] x [N, K]
      dx = torch::empty({m, k}, rows.options());
      sgemm('N', 'N', m, k, n, g, w, 0.0f, dx);
      dx = dx.view(with_last(grads[0].sizes(), k));
    }
    if (ctx->needs_input_grad(1)) {  // dY^T X: [N, M] x [M, K]
      dw = torch::empty({n, k}, w.options());
      sgemm('T', 'N', n, k, m, g, rows, 0.0f, dw);
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) db = g.sum(0);
    return {dx, dw, db};
  }
};

// x (bf16) W^T with W cast to bf16 for the product; fp32 out, fp32 weight gradient.
class Bf16LinearToFp32 : public torch::autograd::Function<Bf16LinearToFp32> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight) {
    const auto rows = x.reshape({-1, x.size(-1)}).contiguous();
    const auto w = weight.to(torch::kBFloat16).contiguous();
    ctx->save_for_backward({rows, w});
    auto out = torch::empty({rows.size(0), w.size(0)}, weight.options());
    gemm_bf16('N', 'T', rows.size(0), w.size(0), rows.size(1), rows, w, out);
    return out.view(with_last(x.sizes(), w.size(0)));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &rows = saved[0], &w = saved[1];
    const auto m = rows.size(0), k = rows.size(1), n = w.size(0);
    const auto g = grads[0].reshape({m, n}).to(torch::kBFloat16).contiguous();  // as autocast feeds the backward product
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty({m, k}, grads[0].options().dtype(torch::kFloat));
      gemm_bf16('N', 'N', m, k, n, g, w, dx);
      dx = dx.view(with_last(grads[0].sizes(), k)).to(rows.scalar_type());
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty({n, k}, grads[0].options().dtype(torch::kFloat));
      gemm_bf16('T', 'N', n, k, m, g, rows, dw);
    }
    return {dx, dw};
  }
};

}  // namespace

torch::Tensor linear_to_fp32(const torch::Tensor& x, const torch::Tensor& weight) {
  if (x.scalar_type() != torch::kBFloat16) return torch_encoders::linear(x, weight.to(x.scalar_type())).to(torch::kFloat);
  // The weight as linear() takes it; x is bf16 here, on the CPU in a plain layout.
  const bool onednn = on_onednn({&weight}) && weight.dim() == 2 && weight.numel() > 0 && x.device().is_cpu() &&
                      x.layout() == torch::kStrided && x.numel() > 0;
  if (!onednn) return F::linear(x, weight.to(x.scalar_type())).to(torch::kFloat);
  check_width(x, weight);
  return Bf16LinearToFp32::apply(x, weight);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!on_onednn({&x, &weight, &bias}) || x.dim() < 1 || weight.dim() != 2 || x.numel() == 0 || weight.numel() == 0)
    return F::linear(x, weight, bias);
  check_width(x, weight);
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear: a bias of shape ", bias.sizes(),
              " for a weight [", weight.size(0), ", ", weight.size(1), "]");
  const bool differentiable = torch::GradMode::is_enabled() &&
                              (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (differentiable) return OneDnnLinear::apply(x, weight, bias.defined() ? bias : torch::empty({0}, weight.options()));
  return product(x.reshape({-1, x.size(-1)}).contiguous(), weight.contiguous(), bias).view(with_last(x.sizes(), weight.size(0)));
}

void add_product_(torch::Tensor& out, const torch::Tensor& rows, const torch::Tensor& weight) {
  if (!on_onednn({&out, &rows, &weight}) || !out.is_contiguous() || rows.numel() == 0 || weight.numel() == 0) {
    out.addmm_(rows, weight.t());
    return;
  }
  TORCH_CHECK(rows.dim() == 2 && weight.dim() == 2 && out.dim() == 2 && rows.size(1) == weight.size(1) &&
                  out.size(0) == rows.size(0) && out.size(1) == weight.size(0),
              "add_product_: [", rows.size(0), " x ", rows.size(1), "] x [", weight.size(0), " x ", weight.size(1), "]^T into ", out.sizes());
  torch::NoGradGuard no_grad;
  sgemm('N', 'T', rows.size(0), weight.size(0), rows.size(1), rows.contiguous(), weight.contiguous(), 1.0f, out);
}

}  // namespace histoflow::torch_encoders
