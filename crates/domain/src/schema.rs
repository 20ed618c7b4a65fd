// @generated-style diesel schema for the migrations in /migrations. Keep in step with them.

diesel::table! {
    plans (tier) {
        tier -> Text,
        name -> Text,
        position -> Int4,
        max_keys_per_domain -> Nullable<Int4>,
        max_domains -> Nullable<Int4>,
        max_webhooks -> Nullable<Int4>,
        max_events_per_month -> Nullable<Int8>,
        retention_days -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        created_at -> Timestamptz,
        email_verified_at -> Nullable<Timestamptz>,
        notifications_enabled -> Bool,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Uuid,
        name -> Text,
        plan -> Text,
        status -> Text,
        suspended_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        time_zone -> Text,
    }
}

diesel::table! {
    memberships (workspace_id, user_id) {
        workspace_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        token_hash -> Bytea,
        user_id -> Uuid,
        workspace_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    domains (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        hostname -> Text,
        site_id -> Text,
        attribution_window_days -> Int4,
        created_at -> Timestamptz,
        default_country -> Nullable<Text>,
    }
}

diesel::table! {
    inbound_keys (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Uuid,
        name -> Text,
        key_hash -> Bytea,
        prefix -> Text,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    events (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Uuid,
        key_id -> Nullable<Uuid>,
        event_name -> Text,
        email -> Text,
        payload -> Jsonb,
        occurred_at -> Timestamptz,
        received_at -> Timestamptz,
        email_sha256 -> Bytea,
        value -> Nullable<Float8>,
        currency -> Text,
        order_id -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        phone -> Nullable<Text>,
        ip -> Nullable<Text>,
        city -> Nullable<Text>,
        country -> Nullable<Text>,
        country_code -> Nullable<Text>,
        state -> Nullable<Text>,
        state_code -> Nullable<Text>,
        guid -> Nullable<Text>,
        product_name -> Nullable<Text>,
        product_link -> Nullable<Text>,
        product_image -> Nullable<Text>,
        products -> Jsonb,
        first_touch_id -> Nullable<Uuid>,
        last_touch_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    event_keys (workspace_id, event_id, received_at) {
        workspace_id -> Uuid,
        event_id -> Uuid,
        domain_id -> Uuid,
        received_at -> Timestamptz,
        order_id -> Nullable<Text>,
        event_name -> Text,
        idempotency_key -> Nullable<Text>,
    }
}

diesel::table! {
    usage_counters (workspace_id, month, shard) {
        workspace_id -> Uuid,
        month -> Date,
        shard -> Int2,
        events -> Int8,
    }
}

diesel::table! {
    event_rollups (workspace_id, domain_id, hour, event_name, currency, shard) {
        workspace_id -> Uuid,
        domain_id -> Uuid,
        hour -> Timestamptz,
        shard -> Int2,
        event_name -> Text,
        currency -> Text,
        first_source -> Nullable<Text>,
        first_medium -> Nullable<Text>,
        first_campaign -> Nullable<Text>,
        first_link_id -> Nullable<Uuid>,
        first_click -> Nullable<Text>,
        last_source -> Nullable<Text>,
        last_medium -> Nullable<Text>,
        last_campaign -> Nullable<Text>,
        last_link_id -> Nullable<Uuid>,
        last_click -> Nullable<Text>,
        events -> Int8,
        valued -> Int8,
        value_sum -> Numeric,
    }
}

diesel::table! {
    event_totals (workspace_id, domain_id, hour, event_name, currency, shard) {
        workspace_id -> Uuid,
        domain_id -> Uuid,
        hour -> Timestamptz,
        shard -> Int2,
        event_name -> Text,
        currency -> Text,
        first_click -> Nullable<Text>,
        last_click -> Nullable<Text>,
        events -> Int8,
        valued -> Int8,
        value_sum -> Numeric,
    }
}

diesel::table! {
    event_hours (workspace_id, hour, domain_id, kind, currency, shard) {
        workspace_id -> Uuid,
        hour -> Timestamptz,
        domain_id -> Uuid,
        kind -> Text,
        currency -> Text,
        shard -> Int2,
        events -> Int8,
        first_clicked -> Int8,
        last_clicked -> Int8,
        valued -> Int8,
        value_sum -> Numeric,
    }
}

diesel::table! {
    event_days (workspace_id, grouping, day, domain_id, kind, currency, shard) {
        workspace_id -> Uuid,
        grouping -> Text,
        day -> Date,
        domain_id -> Uuid,
        key -> Nullable<Text>,
        kind -> Text,
        currency -> Text,
        shard -> Int2,
        events -> Int8,
        first_clicked -> Int8,
        last_clicked -> Int8,
        valued -> Int8,
        value_sum -> Numeric,
    }
}

diesel::table! {
    /// Events not yet folded into the rollups (migration 000090); no key in the database.
    event_rollup_pending (workspace_id, event_id) {
        workspace_id -> Uuid,
        event_id -> Uuid,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Nullable<Uuid>,
        name -> Text,
        url -> Text,
        secret -> Nullable<Text>,
        events -> Array<Text>,
        conditions -> Jsonb,
        status -> Text,
        paused_reason -> Nullable<Text>,
        consecutive_failures -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamptz>,
        rate_limit -> Nullable<Int4>,
        max_in_flight -> Nullable<Int4>,
        headers -> Nullable<Text>,
        consecutive_timeouts -> Int4,
        circuit_open_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_slots (delivery_id, attempt) {
        delivery_id -> Uuid,
        attempt -> Int4,
        webhook_id -> Uuid,
        started_at -> Timestamptz,
        held_until -> Timestamptz,
        workspace_id -> Uuid,
    }
}

diesel::table! {
    webhook_recoveries (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        webhook_id -> Uuid,
        since -> Timestamptz,
        until -> Nullable<Timestamptz>,
        queued -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// A view: delivery_queue and delivery_history together, for reads.
    deliveries (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        webhook_id -> Nullable<Uuid>,
        event_id -> Uuid,
        url -> Text,
        status -> Text,
        attempts -> Int4,
        round_attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        connection_id -> Nullable<Uuid>,
        recovery_id -> Nullable<Uuid>,
        event_received_at -> Timestamptz,
    }
}

diesel::table! {
    /// Deliveries pending or held (the hot queue).
    delivery_queue (workspace_id, id) {
        id -> Uuid,
        workspace_id -> Uuid,
        webhook_id -> Nullable<Uuid>,
        event_id -> Uuid,
        url -> Text,
        status -> Text,
        attempts -> Int4,
        round_attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        connection_id -> Nullable<Uuid>,
        recovery_id -> Nullable<Uuid>,
        event_received_at -> Timestamptz,
        leased_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Deliveries that succeeded or failed (append-only, partitioned by month of created_at).
    delivery_history (workspace_id, id, created_at) {
        id -> Uuid,
        workspace_id -> Uuid,
        webhook_id -> Nullable<Uuid>,
        event_id -> Uuid,
        url -> Text,
        status -> Text,
        attempts -> Int4,
        round_attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        connection_id -> Nullable<Uuid>,
        recovery_id -> Nullable<Uuid>,
        event_received_at -> Timestamptz,
    }
}

diesel::table! {
    delivery_attempts (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        delivery_id -> Uuid,
        attempt -> Int4,
        started_at -> Timestamptz,
        duration_ms -> Int4,
        status_code -> Nullable<Int4>,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    visitors (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Uuid,
        browser_id -> Text,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    touches (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Uuid,
        visitor_id -> Nullable<Uuid>,
        occurred_at -> Timestamptz,
        landing_page -> Nullable<Text>,
        referrer -> Nullable<Text>,
        utm_source -> Nullable<Text>,
        utm_medium -> Nullable<Text>,
        utm_campaign -> Nullable<Text>,
        utm_content -> Nullable<Text>,
        utm_term -> Nullable<Text>,
        gclid -> Nullable<Text>,
        gbraid -> Nullable<Text>,
        wbraid -> Nullable<Text>,
        fbclid -> Nullable<Text>,
        ttclid -> Nullable<Text>,
        msclkid -> Nullable<Text>,
        device_type -> Text,
        country -> Nullable<Text>,
        webdriver -> Bool,
        user_agent -> Nullable<Text>,
        quality_score -> Int4,
        quality_reasons -> Array<Text>,
        link_id -> Nullable<Uuid>,
        target_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    visitor_emails (domain_id, email_sha256, visitor_id) {
        domain_id -> Uuid,
        email_sha256 -> Bytea,
        visitor_id -> Uuid,
        workspace_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    connections (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Uuid,
        platform -> Text,
        enabled -> Bool,
        settings -> Jsonb,
        credentials -> Jsonb,
        event_map -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        reconnect_reason -> Nullable<Text>,
        reconnect_since -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        token_hash -> Bytea,
        prefix -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Uuid,
        workspace_id -> Nullable<Uuid>,
        actor_id -> Nullable<Uuid>,
        actor_email -> Text,
        action -> Text,
        target -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        email -> Text,
        role -> Text,
        invited_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        token_hash -> Nullable<Bytea>,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    links (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        domain_id -> Uuid,
        name -> Text,
        slug -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    link_targets (id) {
        id -> Uuid,
        link_id -> Uuid,
        url -> Text,
        weight -> Int4,
        position -> Int4,
        workspace_id -> Uuid,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Uuid,
        to_address -> Text,
        kind -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    account_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        purpose -> Text,
        token_hash -> Bytea,
        new_email -> Nullable<Text>,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications_sent (workspace_id, cause, day) {
        workspace_id -> Uuid,
        cause -> Text,
        day -> Date,
    }
}

diesel::table! {
    routing_keys (kind, key) {
        kind -> Text,
        key -> Bytea,
        workspace_id -> Uuid,
    }
}

diesel::table! {
    platform_requests (workspace_id, delivery_id) {
        workspace_id -> Uuid,
        delivery_id -> Uuid,
        request_id -> Text,
        status -> Text,
        detail -> Nullable<Text>,
        checks -> Int4,
        next_check_at -> Timestamptz,
        checked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    connection_limits (workspace_id, connection_id) {
        workspace_id -> Uuid,
        connection_id -> Uuid,
        held_until -> Timestamptz,
        reason -> Text,
    }
}

diesel::table! {
    connection_operations (workspace_id, connection_id, hour) {
        workspace_id -> Uuid,
        connection_id -> Uuid,
        hour -> Timestamptz,
        operations -> Int4,
    }
}

diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> workspaces (workspace_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(account_tokens -> users (user_id));
diesel::joinable!(domains -> workspaces (workspace_id));
diesel::joinable!(inbound_keys -> domains (domain_id));
diesel::joinable!(workspaces -> plans (plan));
diesel::joinable!(deliveries -> webhooks (webhook_id));
diesel::joinable!(touches -> visitors (visitor_id));
diesel::joinable!(visitor_emails -> visitors (visitor_id));
diesel::joinable!(deliveries -> events (event_id));
diesel::joinable!(delivery_attempts -> deliveries (delivery_id));
diesel::joinable!(link_targets -> links (link_id));

diesel::allow_tables_to_appear_in_same_query!(
    mail_outbox,
    account_tokens,
    notifications_sent,
    plans,
    users,
    workspaces,
    memberships,
    sessions,
    domains,
    inbound_keys,
    events,
    event_keys,
    usage_counters,
    webhooks,
    webhook_slots,
    webhook_recoveries,
    deliveries,
    delivery_queue,
    delivery_history,
    delivery_attempts,
    visitors,
    touches,
    visitor_emails,
    connections,
    api_tokens,
    audit_log,
    invitations,
    links,
    link_targets,
    routing_keys,
    platform_requests,
    connection_limits,
    connection_operations,
);
