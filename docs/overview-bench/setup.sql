INSERT INTO workspaces (id, name, plan) VALUES ('11111111-1111-1111-1111-111111111111', 'bench', 'command');
INSERT INTO domains (id, workspace_id, hostname, site_id)
SELECT ('22222222-2222-2222-2222-22222222222' || g)::uuid, '11111111-1111-1111-1111-111111111111', 'd' || g || '.example.com', 'site' || g FROM generate_series(1, 5) g;
INSERT INTO touches (id, workspace_id, domain_id, occurred_at, device_type, utm_source, utm_medium, utm_campaign, gclid, fbclid)
SELECT gen_random_uuid(), '11111111-1111-1111-1111-111111111111', ('22222222-2222-2222-2222-22222222222' || (1 + g % 5))::uuid,
       now() - (g % 90 || ' days')::interval, 'desktop',
       (ARRAY['google','facebook','newsletter','bing','tiktok'])[1 + g % 5], (ARRAY['cpc','email','social'])[1 + g % 3],
       'campaign-' || (g % 40), CASE WHEN g % 3 = 0 THEN 'g' || g END, CASE WHEN g % 5 = 1 THEN 'f' || g END
FROM generate_series(1, 20000) g;
