# Compile settings shared by every fmg target.
#
# Host code is compiled without floating-point contraction so that the
# counter-based sampler rounds exactly as on the device, where it uses
# explicit _rn intrinsics.
function(fmg_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_17)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -ffp-contract=off>
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo -Xcompiler=-ffp-contract=off>)
  if(FMG_HAVE_CUDA)
    set_target_properties(${target} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  endif()
endfunction()
