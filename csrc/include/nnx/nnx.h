// Umbrella header of the embeddable nnx C++ library.
#pragma once

#include "nnx/conv.h"
#include "nnx/gemm.h"
#include "nnx/knn.h"
#include "nnx/model.h"
#include "nnx/nn.h"
#include "nnx/norm.h"
#include "nnx/pool.h"
#include "nnx/rnn.h"
#include "nnx/runtime.h"
