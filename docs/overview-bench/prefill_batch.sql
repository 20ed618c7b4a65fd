INSERT INTO events (id, workspace_id, domain_id, event_name, email, payload, occurred_at, received_at, email_sha256, value, currency, first_touch_id, last_touch_id)
SELECT gen_random_uuid(), '11111111-1111-1111-1111-111111111111', ('22222222-2222-2222-2222-22222222222' || (1 + g % 5))::uuid,
       (ARRAY['purchase','purchase','lead','refund','event1'])[1 + g % 5], 'c' || g || '@example.com', '{}',
       now() - ((g % 129600) || ' minutes')::interval, now() - ((g % 129600) || ' minutes')::interval, '\x00',
       round((g % 500)::numeric / 3, 2)::float8, CASE WHEN g % 7 = 0 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN g % 3 = 0 THEN (SELECT id FROM tt WHERE n = 1 + (g % 20000)) END,
       CASE WHEN g % 3 = 0 THEN (SELECT id FROM tt WHERE n = 1 + ((g * 7) % 20000)) END
FROM generate_series(:lo, :hi) g;
