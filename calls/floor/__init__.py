"""The operations floor: the admin's home page, live counts and charts over the call records.

`selectors` holds the queries (plain functions, tested on their own); `views` shapes them into the
admin's pages; `install` puts them on the staff admin site.
"""
