-- =============================================================================
-- Outpost sample catalog: "Northwind Outfitters", a fictional outdoor-gear retailer.
-- This script generates the sample database bundled with Outpost: `outpost run`
-- with no arguments executes it into a temporary SQLite database, then extracts
-- metadata (tables, views, columns, keys, indexes) from the catalog only
-- (sqlite_schema and PRAGMAs). Rows are never read; the few INSERTs at the end just
-- make the database look lived-in. It holds no real data: every name, address and
-- amount is invented. SQLite has one schema per file, so four "schemas" are
-- emulated with table-name prefixes (hr_, inventory_, sales_, finance_). Comments
-- inside CREATE statements are kept verbatim in sqlite_schema.sql.
-- =============================================================================

PRAGMA foreign_keys = ON;

BEGIN;

-- ==== hr_: people, places and the org chart ==================================
CREATE TABLE hr_locations ( -- Physical sites: head office, retail stores and distribution centres.
    location_id   INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL CHECK (kind IN ('office', 'store', 'warehouse')),
    city          TEXT    NOT NULL,
    country_code  TEXT    NOT NULL DEFAULT 'US' CHECK (length(country_code) = 2) -- ISO 3166-1 alpha-2
);

CREATE TABLE hr_departments ( -- Organisational units.
    department_id    INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    cost_center      TEXT    NOT NULL UNIQUE,  -- e.g. 'CC-100'
    location_id      INTEGER NOT NULL REFERENCES hr_locations (location_id),
    head_employee_id INTEGER REFERENCES hr_employees (employee_id)
                             DEFERRABLE INITIALLY DEFERRED  -- deferred: heads are hired after the department exists
);

CREATE TABLE hr_job_titles ( -- Job catalogue with salary bands.
    job_title_id  INTEGER PRIMARY KEY,
    title         TEXT          NOT NULL UNIQUE,
    min_salary    NUMERIC(12,2) NOT NULL,
    max_salary    NUMERIC(12,2) NOT NULL,
    CHECK (min_salary > 0 AND max_salary >= min_salary)
);

CREATE TABLE hr_employees ( -- Everyone on the payroll. manager_id forms the reporting tree (NULL for the CEO).
    employee_id    INTEGER PRIMARY KEY,
    first_name     TEXT          NOT NULL,
    last_name      TEXT          NOT NULL,
    full_name      TEXT          GENERATED ALWAYS AS (first_name || ' ' || last_name) VIRTUAL,
    email          TEXT          NOT NULL COLLATE NOCASE UNIQUE,
    department_id  INTEGER       NOT NULL REFERENCES hr_departments (department_id),
    job_title_id   INTEGER       NOT NULL REFERENCES hr_job_titles (job_title_id),
    manager_id     INTEGER       REFERENCES hr_employees (employee_id) ON DELETE SET NULL,
    hired_on       DATE          NOT NULL,
    salary         NUMERIC(12,2) NOT NULL CHECK (salary > 0),  -- annual, USD
    is_active      INTEGER       NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    badge_photo    BLOB,                                       -- small JPEG thumbnail
    CHECK (manager_id IS NULL OR manager_id <> employee_id)
);

CREATE TABLE hr_employee_skills ( -- Skills matrix: one row per employee and skill.
    employee_id  INTEGER NOT NULL REFERENCES hr_employees (employee_id) ON DELETE CASCADE,
    skill        TEXT    NOT NULL,
    level        INTEGER NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 5), -- 1 novice .. 5 expert
    PRIMARY KEY (employee_id, skill)
) WITHOUT ROWID;

CREATE TABLE hr_time_off_requests ( -- Leave requests; days is derived from the date range.
    request_id    INTEGER PRIMARY KEY,
    employee_id   INTEGER   NOT NULL REFERENCES hr_employees (employee_id) ON DELETE CASCADE,
    approver_id   INTEGER   REFERENCES hr_employees (employee_id),
    starts_on     DATE      NOT NULL,
    ends_on       DATE      NOT NULL,
    days          INTEGER   GENERATED ALWAYS AS (CAST(julianday(ends_on) - julianday(starts_on) AS INTEGER) + 1) STORED,
    status        TEXT      NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (ends_on >= starts_on)
);

-- ==== inventory_: what we sell, where it sits, who we buy it from =============
CREATE TABLE inventory_suppliers ( -- Vendors we purchase stock from.
    supplier_id     INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    contact_email   TEXT,                    -- unique when present (partial index below)
    country_code    TEXT    NOT NULL CHECK (length(country_code) = 2),
    lead_time_days  INTEGER NOT NULL DEFAULT 14 CHECK (lead_time_days >= 0)
);

CREATE TABLE inventory_categories ( -- Product taxonomy; parent_category_id nests categories (NULL at the top level).
    category_id         INTEGER PRIMARY KEY,
    parent_category_id  INTEGER REFERENCES inventory_categories (category_id),
    name                TEXT    NOT NULL,
    slug                TEXT    NOT NULL UNIQUE,  -- URL fragment on the web shop
    UNIQUE (parent_category_id, name)
);

CREATE TABLE inventory_products ( -- Sellable items (SKUs).
    product_id       INTEGER PRIMARY KEY,
    sku              TEXT          NOT NULL UNIQUE CHECK (sku GLOB 'NWO-[0-9][0-9][0-9][0-9][0-9]'),
    name             TEXT          NOT NULL,
    category_id      INTEGER       NOT NULL REFERENCES inventory_categories (category_id),
    supplier_id      INTEGER       REFERENCES inventory_suppliers (supplier_id) ON DELETE SET NULL,
    unit_cost        NUMERIC(12,2) NOT NULL CHECK (unit_cost >= 0),
    list_price       NUMERIC(12,2) NOT NULL CHECK (list_price >= unit_cost),
    margin_pct       REAL          GENERATED ALWAYS AS (round(100.0 * (list_price - unit_cost) / list_price, 1)) VIRTUAL,
    weight_kg        REAL,
    is_discontinued  INTEGER       NOT NULL DEFAULT 0 CHECK (is_discontinued IN (0, 1))
);

CREATE TABLE inventory_warehouses ( -- Stock-holding sites; each sits at exactly one hr_locations row.
    warehouse_id  INTEGER PRIMARY KEY,
    code          TEXT    NOT NULL UNIQUE,  -- short code, e.g. 'DEN1'
    location_id   INTEGER NOT NULL UNIQUE REFERENCES hr_locations (location_id),
    manager_id    INTEGER REFERENCES hr_employees (employee_id) ON DELETE SET NULL,
    capacity_m3   REAL    CHECK (capacity_m3 > 0)
);

CREATE TABLE inventory_stock_levels ( -- Quantity of each product in each warehouse.
    warehouse_id   INTEGER   NOT NULL REFERENCES inventory_warehouses (warehouse_id) ON DELETE CASCADE,
    product_id     INTEGER   NOT NULL REFERENCES inventory_products (product_id) ON DELETE CASCADE,
    on_hand        INTEGER   NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved       INTEGER   NOT NULL DEFAULT 0 CHECK (reserved >= 0),  -- allocated to open orders
    available      INTEGER   GENERATED ALWAYS AS (on_hand - reserved) VIRTUAL,
    reorder_point  INTEGER   NOT NULL DEFAULT 10,
    counted_at     TIMESTAMP,                                           -- last physical count
    PRIMARY KEY (warehouse_id, product_id)
) WITHOUT ROWID;

CREATE TABLE inventory_purchase_orders ( -- Replenishment orders sent to suppliers.
    purchase_order_id  INTEGER PRIMARY KEY,
    po_number          TEXT          NOT NULL UNIQUE,
    supplier_id        INTEGER       NOT NULL REFERENCES inventory_suppliers (supplier_id),
    warehouse_id       INTEGER       NOT NULL REFERENCES inventory_warehouses (warehouse_id),
    approved_by        INTEGER       REFERENCES hr_employees (employee_id),
    status             TEXT          NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sent', 'received', 'cancelled')),
    ordered_on         DATE          NOT NULL,
    total_cost         NUMERIC(12,2) NOT NULL DEFAULT 0 CHECK (total_cost >= 0)
);

-- ==== sales_: customers and their orders ======================================
CREATE TABLE sales_customers ( -- People, clubs and businesses that buy from us.
    customer_id    INTEGER PRIMARY KEY,
    customer_code  TEXT      NOT NULL UNIQUE,
    email          TEXT      NOT NULL COLLATE NOCASE UNIQUE,
    display_name   TEXT      NOT NULL,
    segment        TEXT      NOT NULL DEFAULT 'consumer' CHECK (segment IN ('consumer', 'club', 'wholesale')),
    loyalty_tier   TEXT      CHECK (loyalty_tier IN ('base', 'trail', 'summit')),  -- NULL = not enrolled
    created_at     TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE sales_customer_addresses ( -- Billing and shipping addresses; deleted with their customer.
    address_id    INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES sales_customers (customer_id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('billing', 'shipping')),
    line1         TEXT    NOT NULL,
    city          TEXT    NOT NULL,
    postal_code   TEXT,
    country_code  TEXT    NOT NULL DEFAULT 'US',
    is_default    INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))  -- one default per kind (partial index)
);

CREATE TABLE sales_promotions ( -- Discount codes.
    promotion_id  INTEGER PRIMARY KEY,
    code          TEXT NOT NULL COLLATE NOCASE UNIQUE,
    percent_off   REAL NOT NULL CHECK (percent_off > 0 AND percent_off <= 50),
    starts_on     DATE NOT NULL,
    ends_on       DATE,                               -- NULL = open-ended
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);

CREATE TABLE sales_orders ( -- Order headers from every channel.
    order_id             INTEGER PRIMARY KEY,
    order_number         TEXT      NOT NULL UNIQUE,
    customer_id          INTEGER   NOT NULL REFERENCES sales_customers (customer_id),
    sales_rep_id         INTEGER   REFERENCES hr_employees (employee_id) ON DELETE SET NULL,
    store_location_id    INTEGER   REFERENCES hr_locations (location_id),  -- NULL for web/phone orders
    shipping_address_id  INTEGER   REFERENCES sales_customer_addresses (address_id),
    promotion_id         INTEGER   REFERENCES sales_promotions (promotion_id),
    channel              TEXT      NOT NULL CHECK (channel IN ('web', 'store', 'phone')),
    status               TEXT      NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
    currency_code        TEXT      NOT NULL DEFAULT 'USD' REFERENCES finance_currencies (currency_code),
    ordered_at           TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    shipped_at           TIMESTAMP,
    CHECK (shipped_at IS NULL OR shipped_at >= ordered_at)
);

CREATE TABLE sales_order_items ( -- Order lines; line_total is computed once and stored.
    order_id    INTEGER       NOT NULL REFERENCES sales_orders (order_id) ON DELETE CASCADE,
    line_no     INTEGER       NOT NULL CHECK (line_no > 0),
    product_id  INTEGER       NOT NULL REFERENCES inventory_products (product_id),
    quantity    INTEGER       NOT NULL CHECK (quantity > 0),
    unit_price  NUMERIC(12,2) NOT NULL CHECK (unit_price >= 0),
    discount    REAL          NOT NULL DEFAULT 0 CHECK (discount >= 0 AND discount < 1),  -- fraction: 0.10 = 10%
    line_total  NUMERIC(12,2) GENERATED ALWAYS AS (round(quantity * unit_price * (1 - discount), 2)) STORED,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE sales_returns ( -- Returned order lines (composite foreign key to sales_order_items).
    return_id      INTEGER PRIMARY KEY,
    order_id       INTEGER       NOT NULL,
    line_no        INTEGER       NOT NULL,
    quantity       INTEGER       NOT NULL CHECK (quantity > 0),
    reason         TEXT          NOT NULL CHECK (reason IN ('damaged', 'wrong_size', 'not_as_described', 'changed_mind')),
    refund_amount  NUMERIC(12,2) NOT NULL DEFAULT 0,  -- including tax
    received_at    TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (order_id, line_no) REFERENCES sales_order_items (order_id, line_no) ON DELETE CASCADE
);

-- ==== finance_: currencies, ledger, invoices and payments =====================
CREATE TABLE finance_currencies ( -- ISO 4217 currencies we trade in.
    currency_code  TEXT    PRIMARY KEY CHECK (length(currency_code) = 3),
    name           TEXT    NOT NULL,
    minor_units    INTEGER NOT NULL DEFAULT 2  -- digits after the decimal point
) WITHOUT ROWID;

CREATE TABLE finance_accounts ( -- Chart of accounts; parent_account_id builds the roll-up hierarchy.
    account_id         INTEGER PRIMARY KEY,
    account_number     TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    account_type       TEXT    NOT NULL CHECK (account_type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    parent_account_id  INTEGER REFERENCES finance_accounts (account_id),
    department_id      INTEGER REFERENCES hr_departments (department_id)  -- budget owner, if any
);

CREATE TABLE finance_invoices ( -- One invoice per sales order.
    invoice_id      INTEGER PRIMARY KEY,
    invoice_number  TEXT          NOT NULL UNIQUE,
    order_id        INTEGER       NOT NULL UNIQUE REFERENCES sales_orders (order_id),
    currency_code   TEXT          NOT NULL REFERENCES finance_currencies (currency_code),
    issued_on       DATE          NOT NULL,
    due_on          DATE          NOT NULL,
    subtotal        NUMERIC(12,2) NOT NULL,
    tax             NUMERIC(12,2) NOT NULL DEFAULT 0,
    total           NUMERIC(12,2) GENERATED ALWAYS AS (round(subtotal + tax, 2)) STORED,
    status          TEXT          NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'void')),
    pdf             BLOB,                                -- archived rendering, if any
    CHECK (due_on >= issued_on)
);

CREATE TABLE finance_payments ( -- Money received against invoices; negative amounts are refunds.
    payment_id     INTEGER PRIMARY KEY,
    invoice_id     INTEGER       NOT NULL REFERENCES finance_invoices (invoice_id) ON DELETE CASCADE,
    amount         NUMERIC(12,2) NOT NULL CHECK (amount <> 0),
    method         TEXT          NOT NULL CHECK (method IN ('card', 'bank_transfer', 'gift_card', 'cash')),
    processor_ref  TEXT          UNIQUE,                 -- payment gateway reference
    received_at    TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE finance_journal_entries ( -- General-ledger journal headers.
    entry_id    INTEGER PRIMARY KEY,
    entry_date  DATE      NOT NULL,
    source      TEXT      NOT NULL CHECK (source IN ('sales', 'purchasing', 'payroll', 'manual')),
    memo        TEXT,
    posted_by   INTEGER   REFERENCES hr_employees (employee_id),
    posted_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE finance_journal_lines ( -- Double-entry lines: each line is either a debit or a credit, never both.
    entry_id    INTEGER       NOT NULL REFERENCES finance_journal_entries (entry_id) ON DELETE CASCADE,
    line_no     INTEGER       NOT NULL,
    account_id  INTEGER       NOT NULL REFERENCES finance_accounts (account_id),
    debit       NUMERIC(12,2) NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit      NUMERIC(12,2) NOT NULL DEFAULT 0 CHECK (credit >= 0),
    PRIMARY KEY (entry_id, line_no),
    CHECK ((debit = 0) <> (credit = 0))
);

-- ==== Indexes =================================================================
CREATE INDEX hr_employees_department_idx ON hr_employees (department_id);
CREATE INDEX hr_employees_manager_idx ON hr_employees (manager_id);
CREATE INDEX hr_employees_name_idx ON hr_employees (last_name COLLATE NOCASE, first_name COLLATE NOCASE);
CREATE INDEX inventory_products_category_supplier_idx ON inventory_products (category_id, supplier_id);
CREATE INDEX inventory_products_active_name_idx ON inventory_products (name) WHERE is_discontinued = 0;
CREATE UNIQUE INDEX inventory_suppliers_contact_email_uq ON inventory_suppliers (contact_email) WHERE contact_email IS NOT NULL;
CREATE UNIQUE INDEX sales_customer_addresses_default_uq ON sales_customer_addresses (customer_id, kind) WHERE is_default = 1;
CREATE INDEX sales_orders_customer_ordered_idx ON sales_orders (customer_id, ordered_at DESC);
CREATE INDEX sales_orders_open_status_idx ON sales_orders (status, ordered_at) WHERE status IN ('placed', 'paid');
CREATE INDEX sales_orders_month_idx ON sales_orders (substr(ordered_at, 1, 7));
CREATE INDEX sales_order_items_product_idx ON sales_order_items (product_id);
CREATE INDEX finance_invoices_open_due_idx ON finance_invoices (due_on) WHERE status = 'open';
CREATE INDEX finance_payments_invoice_idx ON finance_payments (invoice_id, received_at);
CREATE UNIQUE INDEX finance_accounts_type_name_uq ON finance_accounts (account_type, name);
CREATE INDEX finance_journal_lines_account_idx ON finance_journal_lines (account_id, entry_id);

-- ==== Views ===================================================================
CREATE VIEW hr_org_chart AS -- Active employees with their manager, department and site.
    SELECT e.employee_id, e.full_name, j.title, d.name AS department, l.name AS location,
           m.employee_id AS manager_id, m.full_name AS manager_name
    FROM hr_employees e
    JOIN hr_job_titles j  ON j.job_title_id = e.job_title_id
    JOIN hr_departments d ON d.department_id = e.department_id
    JOIN hr_locations l   ON l.location_id = d.location_id
    LEFT JOIN hr_employees m ON m.employee_id = e.manager_id
    WHERE e.is_active = 1;

CREATE VIEW inventory_low_stock AS -- Product/warehouse pairs at or below their reorder point, with the supplier to call.
    SELECT w.code AS warehouse, p.sku, p.name AS product, s.available, s.reorder_point,
           sup.name AS supplier, sup.lead_time_days
    FROM inventory_stock_levels s
    JOIN inventory_warehouses w ON w.warehouse_id = s.warehouse_id
    JOIN inventory_products p   ON p.product_id = s.product_id
    LEFT JOIN inventory_suppliers sup ON sup.supplier_id = p.supplier_id
    WHERE s.available <= s.reorder_point AND p.is_discontinued = 0;

CREATE VIEW sales_order_totals AS -- One row per order with line count and merchandise total.
    SELECT o.order_id, o.order_number, o.customer_id, o.sales_rep_id, o.channel, o.status, o.currency_code,
           o.ordered_at, count(i.line_no) AS line_count, coalesce(sum(i.line_total), 0) AS order_total
    FROM sales_orders o
    LEFT JOIN sales_order_items i ON i.order_id = o.order_id
    GROUP BY o.order_id;

CREATE VIEW sales_customer_lifetime_value AS -- Built on the sales_order_totals view (a view over a view).
    SELECT c.customer_id, c.display_name, c.segment, c.loyalty_tier, count(t.order_id) AS orders,
           coalesce(sum(t.order_total), 0) AS lifetime_value, max(t.ordered_at) AS last_ordered_at
    FROM sales_customers c
    LEFT JOIN sales_order_totals t ON t.customer_id = c.customer_id AND t.status <> 'cancelled'
    GROUP BY c.customer_id;

CREATE VIEW sales_rep_performance AS -- Cross-domain, over a view: non-cancelled sales per hr_ employee and department.
    SELECT e.employee_id, e.full_name, d.name AS department,
           count(t.order_id) AS orders, sum(t.order_total) AS revenue
    FROM sales_order_totals t
    JOIN hr_employees e   ON e.employee_id = t.sales_rep_id
    JOIN hr_departments d ON d.department_id = e.department_id
    WHERE t.status <> 'cancelled'
    GROUP BY e.employee_id;

CREATE VIEW finance_open_receivables AS -- Cross-domain: unpaid invoice balances with the customer who owes them.
    SELECT i.invoice_number, c.display_name AS customer, i.currency_code, i.issued_on, i.due_on,
           i.total, round(i.total - coalesce(sum(p.amount), 0), 2) AS balance_due
    FROM finance_invoices i
    JOIN sales_orders o    ON o.order_id = i.order_id
    JOIN sales_customers c ON c.customer_id = o.customer_id
    LEFT JOIN finance_payments p ON p.invoice_id = i.invoice_id
    WHERE i.status = 'open'
    GROUP BY i.invoice_id;

-- ==== Sample rows (fictional), in foreign-key order ===========================
INSERT INTO hr_locations (location_id, name, kind, city) VALUES
    (1, 'Head Office', 'office', 'Denver'), (2, 'Boulder Flagship', 'store', 'Boulder'), (3, 'Portland Store', 'store', 'Portland'),
    (4, 'Front Range DC', 'warehouse', 'Aurora'), (5, 'Cascadia DC', 'warehouse', 'Tacoma');
INSERT INTO hr_job_titles (job_title_id, title, min_salary, max_salary) VALUES
    (1, 'Chief Executive Officer', 180000, 320000), (2, 'Department Head', 110000, 190000),
    (3, 'Store Associate', 36000, 52000), (4, 'Warehouse Lead', 48000, 68000), (5, 'Staff Accountant', 62000, 90000);
INSERT INTO hr_departments (department_id, name, cost_center, location_id, head_employee_id) VALUES
    (1, 'Executive', 'CC-100', 1, 1), (2, 'Retail', 'CC-200', 2, 2), (3, 'Operations', 'CC-300', 4, 3), (4, 'Finance', 'CC-400', 1, 4);
INSERT INTO hr_employees (employee_id, first_name, last_name, email, department_id, job_title_id, manager_id, hired_on, salary, badge_photo) VALUES
    (1, 'Avery', 'Lindqvist', 'avery.lindqvist@northwind.example', 1, 1, NULL, '2009-03-02', 245000, X'FFD8FFE000104A464946'),
    (2, 'Marisol', 'Okafor', 'marisol.okafor@northwind.example', 2, 2, 1, '2011-04-18', 142000, NULL),
    (3, 'Dev', 'Raman', 'dev.raman@northwind.example', 3, 2, 1, '2012-01-09', 138000, NULL),
    (4, 'Hannah', 'Brightwater', 'hannah.brightwater@northwind.example', 4, 2, 1, '2014-07-21', 151000, NULL),
    (5, 'Tomás', 'Reyes', 'tomas.reyes@northwind.example', 2, 3, 2, '2019-06-03', 41000, NULL),
    (6, 'Keiko', 'Sato', 'keiko.sato@northwind.example', 2, 3, 2, '2021-03-15', 39500, NULL),
    (7, 'Grant', 'Mbeki', 'grant.mbeki@northwind.example', 3, 4, 3, '2017-10-30', 59000, NULL),
    (8, 'Priya', 'Nair', 'priya.nair@northwind.example', 4, 5, 4, '2020-02-10', 74000, NULL);
INSERT INTO hr_employee_skills (employee_id, skill, level) VALUES
    (5, 'boot fitting', 4), (5, 'climbing gear', 3), (6, 'bike repair', 2), (7, 'forklift', 5), (8, 'IFRS', 3);
INSERT INTO hr_time_off_requests (request_id, employee_id, approver_id, starts_on, ends_on, status, requested_at) VALUES
    (1, 5, 2, '2024-07-08', '2024-07-12', 'approved', '2024-05-20 09:14:00'),
    (2, 7, 3, '2024-08-19', '2024-08-20', 'pending', '2024-07-01 16:02:00');
INSERT INTO finance_currencies (currency_code, name, minor_units) VALUES ('USD', 'US Dollar', 2), ('CAD', 'Canadian Dollar', 2), ('JPY', 'Japanese Yen', 0);
INSERT INTO finance_accounts (account_id, account_number, name, account_type, parent_account_id, department_id) VALUES
    (1, '1000', 'Assets', 'asset', NULL, NULL), (2, '1100', 'Cash', 'asset', 1, 4), (3, '1200', 'Accounts Receivable', 'asset', 1, 4),
    (4, '1300', 'Inventory', 'asset', 1, 3), (5, '2100', 'Accounts Payable', 'liability', NULL, 4), (6, '4000', 'Merchandise Revenue', 'revenue', NULL, 2);
INSERT INTO inventory_suppliers (supplier_id, name, contact_email, country_code, lead_time_days) VALUES
    (1, 'Summit Textiles Co.', 'orders@summit-textiles.example', 'US', 10),
    (2, 'Fjellsko AS', 'export@fjellsko.example', 'NO', 28), (3, 'Granite Hardgoods', NULL, 'CA', 14);
INSERT INTO inventory_categories (category_id, parent_category_id, name, slug) VALUES
    (1, NULL, 'Apparel', 'apparel'), (2, NULL, 'Footwear', 'footwear'), (3, NULL, 'Camping', 'camping'),
    (4, 1, 'Jackets', 'apparel-jackets'), (5, 3, 'Tents', 'camping-tents');
INSERT INTO inventory_products (product_id, sku, name, category_id, supplier_id, unit_cost, list_price, weight_kg, is_discontinued) VALUES
    (1, 'NWO-10001', 'Ridgeline Rain Shell', 4, 1, 62.00, 149.00, 0.41, 0),
    (2, 'NWO-10002', 'Basecamp Down Parka', 4, 1, 118.00, 279.00, 0.95, 0),
    (3, 'NWO-20001', 'Talus Mid Hiking Boot', 2, 2, 71.50, 189.00, 1.20, 0),
    (4, 'NWO-30001', 'Alpenglow 2P Tent', 5, 3, 145.00, 399.00, 2.10, 0),
    (5, 'NWO-30002', 'Trailhead Camp Stool', 3, 3, 9.25, 24.00, 0.60, 1);
INSERT INTO inventory_warehouses (warehouse_id, code, location_id, manager_id, capacity_m3) VALUES
    (1, 'DEN1', 4, 7, 18500.0), (2, 'TAC1', 5, NULL, 12000.0);
INSERT INTO inventory_stock_levels (warehouse_id, product_id, on_hand, reserved, reorder_point, counted_at) VALUES
    (1, 1, 240, 12, 50, '2024-06-30 18:00:00'), (1, 2, 35, 30, 20, '2024-06-30 18:00:00'),
    (1, 3, 88, 4, 40, '2024-06-30 18:00:00'), (1, 4, 12, 2, 15, '2024-06-30 18:00:00'),
    (2, 1, 160, 0, 50, NULL), (2, 3, 18, 1, 25, NULL);
INSERT INTO inventory_purchase_orders (purchase_order_id, po_number, supplier_id, warehouse_id, approved_by, status, ordered_on, total_cost) VALUES
    (1, 'PO-2024-0117', 1, 1, 3, 'received', '2024-05-02', 7440.00),
    (2, 'PO-2024-0142', 3, 1, 3, 'sent', '2024-06-28', 2900.00),
    (3, 'PO-2024-0143', 2, 2, NULL, 'draft', '2024-07-01', 0);
INSERT INTO sales_customers (customer_id, customer_code, email, display_name, segment, loyalty_tier, created_at) VALUES
    (1, 'C-000101', 'jo.whitfield@mail.example', 'Jo Whitfield', 'consumer', 'summit', '2021-04-11 12:30:00'),
    (2, 'C-000102', 'sam.ortega@mail.example', 'Sam Ortega', 'consumer', 'base', '2023-08-02 19:05:00'),
    (3, 'C-000103', 'trips@flatirons-hiking.example', 'Flatirons Hiking Club', 'club', 'trail', '2022-02-20 10:00:00'),
    (4, 'C-000104', 'buying@peakgear.example', 'Peak Gear Rentals', 'wholesale', NULL, '2020-11-05 15:45:00');
INSERT INTO sales_customer_addresses (address_id, customer_id, kind, line1, city, postal_code, country_code, is_default) VALUES
    (1, 1, 'shipping', '12 Aspen Way', 'Golden', '80401', 'US', 1), (2, 1, 'billing', '12 Aspen Way', 'Golden', '80401', 'US', 1),
    (3, 2, 'shipping', '455 Larch St', 'Seattle', '98103', 'US', 1), (4, 3, 'shipping', '900 Mesa Trail', 'Boulder', '80305', 'US', 1),
    (5, 4, 'shipping', '3 Quarry Rd', 'Canmore', 'T1W 1A1', 'CA', 1);
INSERT INTO sales_promotions (promotion_id, code, percent_off, starts_on, ends_on) VALUES
    (1, 'TRAIL10', 10, '2024-01-01', NULL), (2, 'SUMMER24', 20, '2024-06-15', '2024-07-15');
INSERT INTO sales_orders (order_id, order_number, customer_id, sales_rep_id, store_location_id, shipping_address_id,
                          promotion_id, channel, status, currency_code, ordered_at, shipped_at) VALUES
    (1, 'SO-240501', 1, NULL, NULL, 1, 1, 'web', 'delivered', 'USD', '2024-05-03 20:11:00', '2024-05-04 14:00:00'),
    (2, 'SO-240502', 3, 5, 2, 4, NULL, 'store', 'paid', 'USD', '2024-05-18 11:42:00', NULL),
    (3, 'SO-240601', 2, NULL, NULL, 3, 2, 'web', 'shipped', 'USD', '2024-06-20 08:27:00', '2024-06-21 16:30:00'),
    (4, 'SO-240602', 4, 6, NULL, 5, NULL, 'phone', 'placed', 'CAD', '2024-06-29 13:05:00', NULL),
    (5, 'SO-240603', 1, 5, 2, NULL, NULL, 'store', 'cancelled', 'USD', '2024-06-30 17:50:00', NULL);
INSERT INTO sales_order_items (order_id, line_no, product_id, quantity, unit_price, discount) VALUES
    (1, 1, 1, 1, 149.00, 0.10), (1, 2, 3, 1, 189.00, 0.10), (2, 1, 4, 3, 399.00, 0), (2, 2, 5, 6, 24.00, 0),
    (3, 1, 2, 1, 279.00, 0.20), (4, 1, 3, 10, 160.00, 0), (4, 2, 1, 10, 126.00, 0), (5, 1, 2, 1, 279.00, 0);
INSERT INTO sales_returns (return_id, order_id, line_no, quantity, reason, refund_amount, received_at) VALUES
    (1, 1, 2, 1, 'wrong_size', 183.71, '2024-05-15 10:20:00');
INSERT INTO finance_invoices (invoice_id, invoice_number, order_id, currency_code, issued_on, due_on, subtotal, tax, status, pdf) VALUES
    (1, 'INV-2024-0501', 1, 'USD', '2024-05-03', '2024-05-03', 304.20, 24.34, 'paid', NULL),
    (2, 'INV-2024-0502', 2, 'USD', '2024-05-18', '2024-06-17', 1341.00, 110.63, 'open', X'255044462D312E37'),
    (3, 'INV-2024-0601', 3, 'USD', '2024-06-20', '2024-06-20', 223.20, 22.77, 'paid', NULL),
    (4, 'INV-2024-0602', 4, 'CAD', '2024-06-29', '2024-07-29', 2860.00, 143.00, 'open', NULL);
INSERT INTO finance_payments (payment_id, invoice_id, amount, method, processor_ref, received_at) VALUES
    (1, 1, 328.54, 'card', 'ch_nwo_0001', '2024-05-03 20:11:30'), (2, 1, -183.71, 'card', 'rf_nwo_0001', '2024-05-16 09:00:00'),
    (3, 2, 700.00, 'bank_transfer', NULL, '2024-06-01 10:00:00'), (4, 3, 245.97, 'gift_card', 'gc_nwo_0417', '2024-06-20 08:27:40');
INSERT INTO finance_journal_entries (entry_id, entry_date, source, memo, posted_by, posted_at) VALUES
    (1, '2024-05-03', 'sales', 'Web order SO-240501', 8, '2024-05-04 07:00:00'),
    (2, '2024-05-12', 'purchasing', 'Receipt PO-2024-0117', 8, '2024-05-12 17:30:00');
INSERT INTO finance_journal_lines (entry_id, line_no, account_id, debit, credit) VALUES
    (1, 1, 2, 328.54, 0), (1, 2, 6, 0, 328.54), (2, 1, 4, 7440.00, 0), (2, 2, 5, 0, 7440.00);

COMMIT;
