-- pgcourier demo database: a small web shop.
--
-- Load it into an existing, empty database (scripts/demo.sh uses "shop"):
--
--   createdb shop && psql -X -v ON_ERROR_STOP=1 -d shop -f demo/shop.sql
--
-- Everything is generated deterministically from md5() of fixed strings (no
-- random()), so every load produces the same rows:
--
--   customers      1000   (some NULL countries, unicode and quoted names)
--   products        100   (text[] tags, jsonb attributes, some NULLs)
--   orders         5000   (enum status, sparse notes with quotes, backslashes,
--                           tabs and newlines; invoice numbers from a sequence)
--   order_items  ~15000   (15044 exactly: 1 to 5 distinct products per order)
--   audit_log       300   (NO primary key, a few duplicate rows: logical
--                           replication cannot replicate UPDATE/DELETE on it)
--
-- Loads in about a second. Works on PostgreSQL 12 and later.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET search_path = public;

BEGIN;

-- A deterministic "random" integer in [0, 2^28) derived from a string.
CREATE FUNCTION pg_temp.h(s text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT ('x' || substr(md5(s), 1, 7))::bit(28)::integer $$;

-- ---------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------

CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');

CREATE TABLE customers (
  id          bigserial PRIMARY KEY,
  email       text NOT NULL UNIQUE,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  country     char(2)
);
COMMENT ON TABLE customers IS 'People who can place orders; one row per account.';
COMMENT ON COLUMN customers.country IS 'ISO 3166-1 alpha-2 code; NULL when unknown.';

CREATE TABLE products (
  id          serial PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  price       numeric(10,2) NOT NULL CHECK (price > 0),
  stock       integer NOT NULL DEFAULT 0,
  tags        text[],
  attributes  jsonb
);
COMMENT ON TABLE products IS 'The catalogue: what the shop sells, at today''s price.';

-- Invoice numbers are handed out when an order is paid, from their own
-- sequence (not owned by any column).
CREATE SEQUENCE invoice_number_seq START WITH 100001;
COMMENT ON SEQUENCE invoice_number_seq IS 'Next invoice number (orders.invoice_no).';

CREATE TABLE orders (
  id           bigserial PRIMARY KEY,
  customer_id  bigint NOT NULL REFERENCES customers (id),
  status       order_status NOT NULL DEFAULT 'new',
  ordered_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  invoice_no   bigint UNIQUE,
  note         text
);
COMMENT ON TABLE orders IS 'One row per checkout; the lines are in order_items.';
COMMENT ON COLUMN orders.invoice_no IS 'Set from invoice_number_seq once the order is paid.';

CREATE TABLE order_items (
  order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  product_id  integer NOT NULL REFERENCES products (id),
  quantity    integer NOT NULL CHECK (quantity > 0),
  unit_price  numeric(10,2) NOT NULL,
  PRIMARY KEY (order_id, product_id)
);
COMMENT ON TABLE order_items IS 'The lines of an order, at the price paid.';

-- Deliberately without a primary key or any unique index.
CREATE TABLE audit_log (
  happened_at  timestamptz NOT NULL,
  actor        text NOT NULL,
  action       text NOT NULL,
  details      jsonb
);
COMMENT ON TABLE audit_log IS 'Append-only trail of actions. Has no primary key.';

-- Indexes on the foreign keys (order_items.order_id is the PK's prefix).
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);
CREATE INDEX orders_ordered_at_idx ON orders (ordered_at);

-- ---------------------------------------------------------------------------
-- Functions, triggers, views
-- ---------------------------------------------------------------------------

CREATE FUNCTION order_total(p_order_id bigint) RETURNS numeric
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  total numeric(12,2);
BEGIN
  SELECT coalesce(sum(oi.quantity * oi.unit_price), 0)
    INTO total
    FROM order_items oi
   WHERE oi.order_id = p_order_id;
  RETURN total;
END;
$$;
COMMENT ON FUNCTION order_total(bigint) IS 'Sum of quantity * unit_price over an order''s lines.';

CREATE FUNCTION orders_touch() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at := now();
  IF NEW.status IN ('paid', 'shipped') AND NEW.invoice_no IS NULL THEN
    NEW.invoice_no := nextval('invoice_number_seq');
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER orders_touch
  BEFORE UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_touch();

CREATE VIEW order_totals AS
SELECT o.id AS order_id,
       o.customer_id,
       o.status,
       o.ordered_at,
       count(oi.product_id) AS item_count,
       coalesce(sum(oi.quantity * oi.unit_price), 0)::numeric(12,2) AS total
  FROM orders o
  LEFT JOIN order_items oi ON oi.order_id = o.id
 GROUP BY o.id;
COMMENT ON VIEW order_totals IS 'Per-order line count and total.';

-- ---------------------------------------------------------------------------
-- Data
-- ---------------------------------------------------------------------------

INSERT INTO customers (id, email, name, created_at, country)
SELECT g,
       'customer' || g || '@example.com',
       (ARRAY['Anna', 'José', 'Zoë', 'Łukasz', '李', 'Ngozi', 'Søren', 'Åsa',
              'Mary-Jane', 'Ólafur', 'Дмитрий', 'Fatima', 'Chloé', 'Jürgen',
              'Priya', 'Noah'])[1 + pg_temp.h('first' || g) % 16]
       || ' ' ||
       (ARRAY['Smith', 'O''Brien', 'Müller', 'García', '王', 'Nakamura',
              'Østergaard', 'Dubois', 'Kowalski', 'Иванова', 'Okafor',
              'van der Berg', 'Nguyễn', 'D''Angelo', 'Ćosić', 'Lee'])
         [1 + pg_temp.h('last' || g) % 16]
       || CASE WHEN g % 97 = 0 THEN ' "the ''quoted'' one"'
               WHEN g % 89 = 0 THEN E' back\\slash'
               WHEN g % 83 = 0 THEN ' 🛒'
               ELSE '' END,
       timestamptz '2022-01-01 00:00:00+00' + g * interval '7 hours 13 minutes',
       CASE WHEN g % 17 = 0 THEN NULL
            ELSE (ARRAY['DE', 'FR', 'US', 'GB', 'PL', 'JP', 'BR', 'NG', 'IN', 'SE'])
                   [1 + pg_temp.h('country' || g) % 10] END
  FROM generate_series(1, 1000) AS g;

INSERT INTO products (id, sku, name, price, stock, tags, attributes)
SELECT g,
       'SKU-' || lpad(g::text, 5, '0'),
       (ARRAY['Mug', 'T-shirt', 'Notebook', 'Sticker pack', 'Hoodie', 'Poster',
              'Café crème beans', 'Umbrella', 'Teapot', 'Socks'])[1 + (g - 1) % 10]
       || ' #' || g
       || CASE WHEN g % 20 = 0 THEN ' (12" edition)' ELSE '' END,
       round((100 + pg_temp.h('price' || g) % 9900) / 100.0, 2),
       pg_temp.h('stock' || g) % 500,
       CASE WHEN g % 10 = 0 THEN NULL
            WHEN g % 10 = 1 THEN ARRAY[]::text[]
            ELSE ARRAY['gift', (ARRAY['new', 'sale', 'eco', 'limited', 'a,b',
                                      'say "hi"', 'back\slash', 'ünïcödé'])
                                 [1 + pg_temp.h('tag' || g) % 8]] END,
       CASE WHEN g % 7 = 0 THEN NULL
            ELSE jsonb_build_object(
                   'color', (ARRAY['red', 'green', 'blue', 'black', 'weiß'])
                              [1 + pg_temp.h('color' || g) % 5],
                   'weight_g', 50 + pg_temp.h('weight' || g) % 950,
                   'dimensions', jsonb_build_object('w', g % 30, 'h', g % 40),
                   'fragile', g % 3 = 0) END
  FROM generate_series(1, 100) AS g;

INSERT INTO orders (id, customer_id, status, ordered_at, updated_at, invoice_no, note)
SELECT o.g,
       o.customer_id,
       o.status,
       o.ordered_at,
       CASE WHEN o.status = 'new' THEN o.ordered_at
            ELSE o.ordered_at + (1 + pg_temp.h('upd' || o.g) % 4000) * interval '1 minute' END,
       CASE WHEN o.status IN ('paid', 'shipped')
            THEN 100000 + count(*) FILTER (WHERE o.status IN ('paid', 'shipped'))
                            OVER (ORDER BY o.g) END,
       CASE WHEN o.g % 25 <> 0 THEN NULL
            ELSE (ARRAY[E'Leave it with the neighbour, it''s the "green" door',
                        E'Gate code: 1234\\#',
                        E'line one\nline two',
                        E'tab\tseparated\tvalues',
                        E'C:\\Users\\shop\\invoice.pdf',
                        'Geschenkverpackung, bitte! 🎁',
                        '',
                        E'semi;colon, comma | pipe ''single'' "double"'])
                   [1 + pg_temp.h('note' || o.g) % 8] END
  FROM (SELECT g,
               1 + pg_temp.h('cust' || g) % 1000 AS customer_id,
               CASE WHEN pg_temp.h('status' || g) % 100 < 10 THEN 'new'
                    WHEN pg_temp.h('status' || g) % 100 < 18 THEN 'cancelled'
                    WHEN pg_temp.h('status' || g) % 100 < 45 THEN 'paid'
                    ELSE 'shipped' END::order_status AS status,
               timestamptz '2023-01-01 00:00:00+00' + g * interval '1 hour 37 minutes' AS ordered_at
          FROM generate_series(1, 5000) AS g) AS o;

-- 1 to 5 lines per order; the products of one order are distinct because
-- 11 * i mod 100 differs for i = 1..5.
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
SELECT o.g,
       p.id,
       1 + pg_temp.h('qty' || o.g || '/' || i) % 4,
       p.price
  FROM generate_series(1, 5000) AS o(g)
 CROSS JOIN LATERAL generate_series(1, 1 + pg_temp.h('nlines=' || o.g) % 5) AS i
  JOIN products p ON p.id = 1 + (o.g * 37 + i * 11) % 100;

INSERT INTO audit_log (happened_at, actor, action, details)
SELECT timestamptz '2023-01-01 00:00:00+00' + g * interval '3 hours 11 minutes',
       CASE WHEN g % 5 = 0 THEN 'system'
            ELSE 'customer' || (1 + pg_temp.h('actor' || g) % 1000) || '@example.com' END,
       (ARRAY['login', 'logout', 'update_address', 'place_order', 'cancel_order'])
         [1 + pg_temp.h('action' || g) % 5],
       CASE WHEN g % 9 = 0 THEN NULL
            ELSE jsonb_build_object('ip', '127.0.0.' || (1 + g % 250), 'seq', g) END
  FROM generate_series(1, 290) AS g;
-- Exact duplicates, which only a table without a key can hold.
INSERT INTO audit_log (happened_at, actor, action, details)
SELECT happened_at, actor, action, details
  FROM audit_log
 WHERE actor = 'system'
 ORDER BY happened_at
 LIMIT 10;

-- The sequences continue after the explicit ids.
DO $$
BEGIN
  PERFORM setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers));
  PERFORM setval(pg_get_serial_sequence('products', 'id'), (SELECT max(id) FROM products));
  PERFORM setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders));
  PERFORM setval('invoice_number_seq', (SELECT max(invoice_no) FROM orders));
END
$$;

COMMIT;

ANALYZE;
