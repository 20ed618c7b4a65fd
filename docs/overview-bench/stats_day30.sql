SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS key,
       CASE WHEN event_name ~* '^(refund|chargeback)$' THEN 'refund' WHEN event_name ~ '^event([1-9]|10)$' THEN 'custom' ELSE 'conversion' END AS kind,
       currency, sum(events)::bigint, sum(CASE WHEN last_click IS NOT NULL THEN events ELSE 0 END)::bigint, coalesce(sum(value_sum), 0)::float8
FROM event_rollups
WHERE workspace_id = '11111111-1111-1111-1111-111111111111' AND (NULL::uuid IS NULL OR domain_id = NULL::uuid)
  AND hour >= ((current_date - 29)::timestamp AT TIME ZONE 'UTC') AND hour < ((current_date + 1)::timestamp AT TIME ZONE 'UTC')
GROUP BY 1, 2, 3;
SELECT NULL::text AS key,
       CASE WHEN event_name ~* '^(refund|chargeback)$' THEN 'refund' WHEN event_name ~ '^event([1-9]|10)$' THEN 'custom' ELSE 'conversion' END AS kind,
       currency, sum(events)::bigint, sum(CASE WHEN last_click IS NOT NULL THEN events ELSE 0 END)::bigint, coalesce(sum(value_sum), 0)::float8
FROM event_rollups
WHERE workspace_id = '11111111-1111-1111-1111-111111111111' AND (NULL::uuid IS NULL OR domain_id = NULL::uuid)
  AND hour >= ((current_date - 59)::timestamp AT TIME ZONE 'UTC') AND hour < ((current_date - 29)::timestamp AT TIME ZONE 'UTC')
GROUP BY 1, 2, 3;
