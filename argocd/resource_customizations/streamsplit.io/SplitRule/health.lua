-- Argo CD health check for streamsplit.io/SplitRule.
-- Healthy: Ready=True for the current generation. Progressing: not yet observed, or not yet
-- published. Degraded: the rule is invalid (Valid=False) or its topic is not ready (TopicReady=False).
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the streamsplit operator to reconcile the rule"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local function describe(condition)
  return (condition.reason or "Unknown") .. ": " .. (condition.message or "")
end
if conditions.Valid ~= nil and conditions.Valid.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(conditions.Valid)
  return hs
end
if conditions.TopicReady ~= nil and conditions.TopicReady.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(conditions.TopicReady)
  return hs
end
if conditions.Ready ~= nil and conditions.Ready.status == "True" then
  hs.status = "Healthy"
  hs.message = conditions.Ready.message or "Published"
  return hs
end
hs.status = "Progressing"
if conditions.Ready ~= nil then
  hs.message = describe(conditions.Ready)
else
  hs.message = "Waiting for the rule to be published"
end
return hs
