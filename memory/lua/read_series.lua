--- @include "series"
-- `points` sums of `group` consecutive buckets of one series (fields `prefix`, `mark`
-- and the bucket, as count_series names them), the first from bucket `first`. Oldest
-- first; a bucket without a field counts 0.
local step, start = tonumber(group), tonumber(first)
local fields = {}
for i = 0, tonumber(points) * step - 1 do
  fields[i + 1] = prefix .. series_bucket(start + i, mark)
end
local counts = redis.call('HMGET', series, unpack(fields))
local sums = {}
for i, count in ipairs(counts) do
  local point = math.floor((i - 1) / step) + 1
  sums[point] = (sums[point] or 0) + (tonumber(count) or 0)
end
return sums
