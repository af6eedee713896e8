#pragma once
// ResNet-50 with torchvision's layout and parameter names (conv1, bn1, layer1..4.N.{conv,bn}1..3,
// downsample.{0,1}); the full network pools layer4 (2048-d, ImageNet and RetCCL weights), the truncated one
// pools layer3 (1024-d, the CLAM convention).
#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {
std::unique_ptr<Backbone> make_resnet50(bool truncated_after_layer3);
}
