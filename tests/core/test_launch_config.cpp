// Host logic behind the CUDA flow kernel's launch: the block-size override,
// the block-size choice and the shared-memory threshold of the label
// counts. Plain C++, so these tests run in builds without CUDA.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "host/errors.hpp"
#include "kernels/cuda/launch_config.cuh"

namespace fmg::launch {
namespace {

TEST(FlowBlockSizeVariable, UnsetOrEmptyMeansAutomatic) {
  EXPECT_EQ(parse_flow_block_size(nullptr), 0);
  EXPECT_EQ(parse_flow_block_size(""), 0);
}

TEST(FlowBlockSizeVariable, AcceptsWholeWarpsUpTo1024) {
  EXPECT_EQ(parse_flow_block_size("32"), 32);
  EXPECT_EQ(parse_flow_block_size("96"), 96);
  EXPECT_EQ(parse_flow_block_size("256"), 256);
  EXPECT_EQ(parse_flow_block_size("1024"), 1024);
}

TEST(FlowBlockSizeVariable, RejectsInvalidValues) {
  for (const char* text : {"0", "16", "100", "1056", "2048", "-64", "+64",
                           " 64", "64 ", "64x", "abc", "99999999999999999999"}) {
    SCOPED_TRACE(text);
    EXPECT_THROW(parse_flow_block_size(text), InvalidArgument);
  }
}

TEST(FlowBlockSizeVariable, MessageNamesVariableAndValue) {
  try {
    parse_flow_block_size("100");
    FAIL() << "no exception";
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("FMG_CUDA_BLOCK_SIZE"), std::string::npos);
    EXPECT_NE(message.find("'100'"), std::string::npos);
    EXPECT_NE(message.find("multiple of 32"), std::string::npos);
  }
}

TEST(FlowBlockSizeChoice, RequestOverridesOccupancy) {
  EXPECT_EQ(choose_flow_block_size(64, 256, 1024), 64);
  EXPECT_EQ(choose_flow_block_size(512, 128, 512), 512);
}

TEST(FlowBlockSizeChoice, RequestAboveKernelLimitThrows) {
  EXPECT_THROW(choose_flow_block_size(1024, 256, 640), InvalidArgument);
}

TEST(FlowBlockSizeChoice, NoRequestTakesOccupancyChoice) {
  EXPECT_EQ(choose_flow_block_size(0, 128, 1024), 128);
  EXPECT_EQ(choose_flow_block_size(0, 224, 512), 224);
}

TEST(OccupancyBlockSize, PicksMostResidentThreads) {
  // Blocks per multiprocessor of a kernel limited to 23 warps by its
  // registers: 5 blocks of 4 warps, 3 of 7.
  const auto by_registers = [](int size) { return 23 / (size / 32); };
  EXPECT_EQ(occupancy_block_size(by_registers, 1024), 224);
}

TEST(OccupancyBlockSize, TiesGoToSmallerBlock) {
  const auto full = [](int size) { return 2048 / size; };
  EXPECT_EQ(occupancy_block_size(full, 1024), 128);
}

TEST(OccupancyBlockSize, StaysWithinRangeAndKernelLimit) {
  std::vector<int> tried;
  const auto record = [&tried](int size) {
    tried.push_back(size);
    return 1;
  };
  EXPECT_EQ(occupancy_block_size(record, 1024), 256);
  EXPECT_EQ(tried, (std::vector<int>{128, 160, 192, 224, 256}));
  tried.clear();
  EXPECT_EQ(occupancy_block_size(record, 200), 192);
  EXPECT_EQ(tried, (std::vector<int>{128, 160, 192}));
}

TEST(OccupancyBlockSize, KernelLimitBelowRange) {
  const auto one = [](int) { return 1; };
  EXPECT_EQ(occupancy_block_size(one, 100), 96);
}

SharedMemoryLimits h200_limits() {
  SharedMemoryLimits limits;
  limits.per_block = 48 * 1024;
  limits.per_multiprocessor = 228 * 1024;
  limits.reserved_per_block = 1024;
  return limits;
}

TEST(SharedLabelSlots, FixedTallyBytes) {
  // Three 64-bit sums, the maximum, three status counts and 4096 16-bit
  // step counters.
  EXPECT_EQ(block_tally::fixed_bytes, 24u + 4u + 12u + 8192u);
  EXPECT_EQ(block_tally::label_words(1), 1u);
  EXPECT_EQ(block_tally::label_words(4), 2u);
  EXPECT_EQ(block_tally::label_words(5001), 2501u);
}

TEST(SharedLabelSlots, OccupancySetsBudgetOnH200) {
  const SharedMemoryLimits limits = h200_limits();
  // 233472 / 16 - 1024 = 13568 bytes per block, 5336 beside the fixed
  // tally: 1334 words of two counters.
  EXPECT_EQ(max_shared_label_slots(limits, 16), 2668u);
  // 233472 / 8 - 1024 = 28160 bytes, 19928 beside the fixed tally.
  EXPECT_EQ(max_shared_label_slots(limits, 8), 9964u);
}

TEST(SharedLabelSlots, ShareRoundsDownToAllocationUnit) {
  SharedMemoryLimits limits = h200_limits();
  // 233472 / 5 = 46694 bytes, of which a block can allocate 46592 in units
  // of 128: 45568 without the reserved KiB, 37336 beside the fixed tally.
  EXPECT_EQ(max_shared_label_slots(limits, 5), 18668u);
  limits.allocation_granularity = 256;
  // 46592 is also a multiple of 256.
  EXPECT_EQ(max_shared_label_slots(limits, 5), 18668u);
  // 233472 / 6 = 38912 = 152 units of 256: 37888 - 8232 = 29656 bytes.
  EXPECT_EQ(max_shared_label_slots(limits, 6), 14828u);
  limits.allocation_granularity = 1024;
  // 38912 rounds down to 38912 (38 KiB): unchanged.
  EXPECT_EQ(max_shared_label_slots(limits, 6), 14828u);
  // 233472 / 7 = 33353, rounded down to 32768: 31744 - 8232 = 23512 bytes.
  EXPECT_EQ(max_shared_label_slots(limits, 7), 11756u);
}

TEST(SharedLabelSlots, PerBlockLimitCapsLowOccupancy) {
  const SharedMemoryLimits limits = h200_limits();
  // 49152 - 8232 bytes: 10230 words.
  EXPECT_EQ(max_shared_label_slots(limits, 4), 20460u);
  EXPECT_EQ(max_shared_label_slots(limits, 1), 20460u);
  EXPECT_EQ(max_shared_label_slots(limits, 0), 20460u);
}

TEST(SharedLabelSlots, NoRoomGivesZero) {
  SharedMemoryLimits limits = h200_limits();
  // 233472 / 32 - 1024 = 6272 bytes, below the fixed tally.
  EXPECT_EQ(max_shared_label_slots(limits, 32), 0u);
  limits.per_block = block_tally::fixed_bytes;
  EXPECT_EQ(max_shared_label_slots(limits, 1), 0u);
  limits.per_multiprocessor = 512;
  EXPECT_EQ(max_shared_label_slots(limits, 1), 0u);
}

TEST(SharedLabelSlots, ThresholdGrowsWithSharedMemory) {
  // An A100 has 164 KiB per multiprocessor against the H200's 228 KiB.
  SharedMemoryLimits a100 = h200_limits();
  a100.per_multiprocessor = 164 * 1024;
  for (int blocks : {6, 8, 12, 16}) {
    SCOPED_TRACE(blocks);
    EXPECT_LT(max_shared_label_slots(a100, blocks),
              max_shared_label_slots(h200_limits(), blocks));
  }
}

}  // namespace
}  // namespace fmg::launch
