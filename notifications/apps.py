from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save, pre_save

        from auditlog.feed import events_sealed
        from auditlog.models import Event
        from notifications import dispatch, rules
        from notifications.models import NotificationRule

        # Every committed event reaches the rules once it is sealed, however it was written.
        events_sealed.connect(dispatch.on_events_sealed, dispatch_uid="notifications.dispatch")
        # The loop guard's mark on events written inside the pipeline.
        pre_save.connect(
            dispatch.mark_pipeline_event, sender=Event, dispatch_uid="notifications.loop_guard"
        )
        post_save.connect(
            rules.forget_rules, sender=NotificationRule, dispatch_uid="notifications.rules"
        )
        post_delete.connect(
            rules.forget_rules, sender=NotificationRule, dispatch_uid="notifications.rules_d"
        )
