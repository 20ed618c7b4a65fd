SELECT to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS key,
       CASE WHEN e.event_name ~* '^(refund|chargeback)$' THEN 'refund' WHEN e.event_name ~ '^event([1-9]|10)$' THEN 'custom' ELSE 'conversion' END AS kind,
       e.currency, count(*), count(lt.gclid), coalesce(sum(e.value), 0)
FROM events e LEFT JOIN touches lt ON lt.id = e.last_touch_id
WHERE e.workspace_id = '11111111-1111-1111-1111-111111111111'
  AND e.occurred_at >= ((current_date - 29)::timestamp AT TIME ZONE 'UTC') AND e.occurred_at < ((current_date + 1)::timestamp AT TIME ZONE 'UTC')
GROUP BY 1, 2, 3;
