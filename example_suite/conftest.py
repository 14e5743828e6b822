"""The example suite runs anywhere: host tests measure everywhere; GPU and
TensorRT tests skip with one line where there is no GPU or no TensorRT."""
